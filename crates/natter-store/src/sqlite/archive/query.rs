//! Archive queries on the read pool: filters, paging both ways, an id to
//! its position.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row};

use super::*;
use crate::sqlite::rows::to_u64;
use crate::{ArchivePage, ArchiveQuery, ArchivedMessage, StoreError};

pub(super) fn archived_row(r: &Row<'_>) -> rusqlite::Result<(i64, ArchivedMessage)> {
    let with_bare: String = r.get(2)?;
    let with_res: String = r.get(3)?;
    let with = if with_res.is_empty() {
        with_bare
    } else {
        format!("{with_bare}/{with_res}")
    };
    let retracted: Option<i64> = r.get(7)?;
    Ok((
        r.get(0)?,
        ArchivedMessage {
            id: r.get(1)?,
            with,
            sender: r.get(4)?,
            origin_id: r.get(5)?,
            stamp_unix_ms: to_u64(r.get(6)?)?,
            retracted_unix_ms: retracted.map(to_u64).transpose()?,
            stanza: r.get(8)?,
        },
    ))
}

/// The position of archive id `id` in `owner`'s archive.
pub(super) fn position(c: &Connection, owner: &str, id: &str) -> Result<i64, StoreError> {
    c.prepare_cached(POSITION_SQL)?
        .query_row([owner, id], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// Builds and runs the query (see [`crate::Store::archive_query`]).
pub(super) fn query(
    c: &Connection,
    owner: &str,
    q: &ArchiveQuery,
) -> Result<ArchivePage, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM archive WHERE owner = ?");
    let mut args: Vec<Value> = vec![owner.to_owned().into()];
    if let Some(with) = &q.with {
        let (bare, res) = split_jid(with);
        sql.push_str(" AND with_bare = ?");
        args.push(bare.to_owned().into());
        if !res.is_empty() {
            sql.push_str(" AND with_res = ?");
            args.push(res.to_owned().into());
        }
    }
    if let Some(id) = &q.after_id {
        sql.push_str(" AND n > ?");
        args.push(position(c, owner, id)?.into());
    }
    if let Some(id) = &q.before_id {
        sql.push_str(" AND n < ?");
        args.push(position(c, owner, id)?.into());
    }
    if let Some(t) = q.start_unix_ms {
        sql.push_str(" AND stamp_ms >= ?");
        args.push(i64::try_from(t).unwrap_or(i64::MAX).into());
    }
    if let Some(t) = q.end_unix_ms {
        sql.push_str(" AND stamp_ms <= ?");
        args.push(i64::try_from(t).unwrap_or(i64::MAX).into());
    }
    if !q.ids.is_empty() {
        if q.ids.len() > MAX_IDS {
            return Err(StoreError::InvalidInput(format!(
                "more than {MAX_IDS} ids in one query"
            )));
        }
        sql.push_str(" AND id IN (");
        for (i, id) in q.ids.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            args.push(id.clone().into());
        }
        sql.push(')');
    }
    sql.push_str(if q.backward {
        " ORDER BY n DESC LIMIT ?"
    } else {
        " ORDER BY n LIMIT ?"
    });
    // One more than asked for tells whether another page follows.
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX - 1);
    args.push((limit + 1).into());
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(args), archived_row)?;
    let mut items: Vec<ArchivedMessage> = Vec::new();
    for row in rows {
        items.push(row?.1);
    }
    let complete = items.len() <= q.limit;
    items.truncate(q.limit);
    if q.backward {
        items.reverse();
    }
    Ok(ArchivePage { items, complete })
}

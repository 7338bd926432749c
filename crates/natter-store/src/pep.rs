//! Personal eventing (XEP-0163): each account's PEP nodes and their items.
//!
//! A node belongs to one owner (a bare JID) and has a name and a
//! configuration, which the store keeps as opaque bytes (the server
//! decides what it means). Its items are ordered: publishing an item puts
//! it after every other item of the node, also when its id was there
//! before (the old item is replaced), and reads give the newest first. A
//! node holds at most as many items as the caller says on each write that
//! adds or keeps items ([`Store::pep_publish`], [`Store::pep_configure`]):
//! the oldest beyond that go in the same transaction.

use crate::{Inner, Store, StoreError};

/// One item of a PEP node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PepItem {
    /// The item id, unique within its node.
    pub id: String,
    /// The payload (serialized XML), opaque to the store.
    pub payload: Vec<u8>,
    /// Who published it (a full JID).
    pub publisher: String,
    /// When it was published, Unix milliseconds.
    pub stamp_unix_ms: u64,
}

/// A node's name and stored configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PepNode {
    pub name: String,
    pub config: Vec<u8>,
}

/// The newest item of one node of one owner (see [`Store::pep_last_items`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PepLastItem {
    pub owner: String,
    pub node: String,
    /// The node's configuration.
    pub config: Vec<u8>,
    pub item: PepItem,
}

/// How [`Store::pep_publish`] creates a node that does not exist yet.
#[derive(Clone, Copy, Debug)]
pub struct PepNewNode<'a> {
    /// The new node's configuration.
    pub config: &'a [u8],
    /// The node is not created if the owner has this many nodes already.
    pub max_nodes: usize,
}

/// What [`Store::pep_publish`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PepPublished {
    /// The item is published (and kept, unless the node keeps none);
    /// `created`: the node was created for it.
    Stored { created: bool },
    /// Nothing: the node does not exist and creating it was not asked for.
    NoNode,
    /// Nothing: the node does not exist and the owner has `max_nodes`.
    TooManyNodes,
}

/// What [`Store::pep_create_node`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PepCreated {
    Created,
    /// Nothing: the node exists.
    Exists,
    /// Nothing: the owner has `max_nodes` nodes.
    TooManyNodes,
}

impl Store {
    /// The owner's nodes, sorted by name.
    pub async fn pep_nodes(&self, owner: &str) -> Result<Vec<PepNode>, StoreError> {
        match &self.0 {
            Inner::Sqlite(s) => s.pep_nodes(owner).await,
        }
    }

    /// One node's configuration; `None` if there is no such node.
    pub async fn pep_node(&self, owner: &str, node: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.0 {
            Inner::Sqlite(s) => s.pep_node(owner, node).await,
        }
    }

    /// Creates an empty node with this configuration, unless it exists or
    /// the owner has `max_nodes` nodes.
    pub async fn pep_create_node(
        &self,
        owner: &str,
        node: &str,
        config: &[u8],
        max_nodes: usize,
    ) -> Result<PepCreated, StoreError> {
        match &self.0 {
            Inner::Sqlite(s) => s.pep_create_node(owner, node, config, max_nodes).await,
        }
    }

    /// Replaces a node's configuration and, in the same transaction, keeps
    /// only its newest `keep_items` items. [`StoreError::NotFound`] if there
    /// is no such node.
    pub async fn pep_configure(
        &self,
        owner: &str,
        node: &str,
        config: &[u8],
        keep_items: usize,
    ) -> Result<(), StoreError> {
        match &self.0 {
            Inner::Sqlite(s) => s.pep_configure(owner, node, config, keep_items).await,
        }
    }

    /// Deletes a node and its items. [`StoreError::NotFound`] if there is
    /// no such node.
    pub async fn pep_delete_node(&self, owner: &str, node: &str) -> Result<(), StoreError> {
        match &self.0 {
            Inner::Sqlite(s) => s.pep_delete_node(owner, node).await,
        }
    }

    /// Publishes `item` to the node as its newest item, replacing an item
    /// with the same id, then keeps only the newest `keep_items` items (0:
    /// the item is not kept at all, nor any other), all in one transaction.
    /// A missing node is created first with `create`, if given.
    pub async fn pep_publish(
        &self,
        owner: &str,
        node: &str,
        item: &PepItem,
        keep_items: usize,
        create: Option<PepNewNode<'_>>,
    ) -> Result<PepPublished, StoreError> {
        match &self.0 {
            Inner::Sqlite(s) => s.pep_publish(owner, node, item, keep_items, create).await,
        }
    }

    /// A node's items, newest first: all of them, or those whose id is in
    /// `ids` (unknown ids are left out); at most `max`.
    /// [`StoreError::NotFound`] if there is no such node.
    pub async fn pep_items(
        &self,
        owner: &str,
        node: &str,
        ids: &[String],
        max: Option<usize>,
    ) -> Result<Vec<PepItem>, StoreError> {
        match &self.0 {
            Inner::Sqlite(s) => s.pep_items(owner, node, ids, max).await,
        }
    }

    /// Deletes one item; whether it was there. [`StoreError::NotFound`] if
    /// there is no such node.
    pub async fn pep_retract(&self, owner: &str, node: &str, id: &str) -> Result<bool, StoreError> {
        match &self.0 {
            Inner::Sqlite(s) => s.pep_retract(owner, node, id).await,
        }
    }

    /// Deletes every item of a node; how many. [`StoreError::NotFound`] if
    /// there is no such node.
    pub async fn pep_purge(&self, owner: &str, node: &str) -> Result<usize, StoreError> {
        match &self.0 {
            Inner::Sqlite(s) => s.pep_purge(owner, node).await,
        }
    }

    /// In one read, the newest item of every node named in `nodes` of every
    /// owner in `owners` that has one, with the node's configuration;
    /// sorted by owner, then node. For a session coming online: the last
    /// item of each node it wants, from each contact it sees.
    pub async fn pep_last_items(
        &self,
        owners: &[String],
        nodes: &[String],
    ) -> Result<Vec<PepLastItem>, StoreError> {
        match &self.0 {
            Inner::Sqlite(s) => s.pep_last_items(owners, nodes).await,
        }
    }
}

//! OMEMO (XEP-0384) key material in PEP, as clients publish and fetch it:
//! the legacy `eu.siacs.conversations.axolotl` namespace (Conversations,
//! Dino, Gajim: a device list item `current`, one bundle node per device)
//! and `urn:xmpp:omemo:2` (one devices node, one bundles node with an item
//! per device, publish-options max_items=max and access_model=open), read
//! by a contact and by a stranger.

mod common;
mod pep_helpers;
use common::*;
use natter_store::Subscription;
use pep_helpers::*;

const AXOLOTL: &str = "eu.siacs.conversations.axolotl";
const DEVICELIST: &str = "eu.siacs.conversations.axolotl.devicelist";
const OMEMO2: &str = "urn:xmpp:omemo:2";
const DEVICES: &str = "urn:xmpp:omemo:2:devices";
const BUNDLES: &str = "urn:xmpp:omemo:2:bundles";

/// Base64-looking key material of `n` characters, different per `seed`.
fn key(seed: u32, n: usize) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..n)
        .map(|i| alphabet[(i * 7 + seed as usize * 13) % 64] as char)
        .collect()
}

fn legacy_bundle(device: u32) -> String {
    let prekeys: String = (1..=100)
        .map(|i| {
            format!(
                "<preKeyPublic preKeyId='{i}'>{}</preKeyPublic>",
                key(device + i, 44)
            )
        })
        .collect();
    format!(
        "<bundle xmlns='{AXOLOTL}'><signedPreKeyPublic signedPreKeyId='1'>{}</signedPreKeyPublic><signedPreKeySignature>{}</signedPreKeySignature><identityKey>{}</identityKey><prekeys>{prekeys}</prekeys></bundle>",
        key(device, 44),
        key(device + 1, 88),
        key(device + 2, 44)
    )
}

fn omemo2_bundle(device: u32) -> String {
    let prekeys: String = (0..100)
        .map(|i| format!("<pk id='{i}'>{}</pk>", key(device + i, 44)))
        .collect();
    format!(
        "<bundle xmlns='{OMEMO2}'><spk id='0'>{}</spk><spks>{}</spks><ik>{}</ik><prekeys>{prekeys}</prekeys></bundle>",
        key(device, 44),
        key(device + 1, 88),
        key(device + 2, 44)
    )
}

/// The text of the payload of `owner`'s item `id` of `node`, read by `c`.
async fn fetch(c: &mut Client, owner: &str, node: &str, id: &str) -> String {
    let r = items(c, "f", owner, node, "", &format!("<item id='{id}'/>")).await;
    assert_eq!(item_ids(&r), [id], "{node}/{id}");
    text(&r)
}

#[tokio::test]
async fn legacy_omemo_devicelist_and_bundles() {
    let srv = server(&["alice", "bob", "carol"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "phone").await;
    let open: &[(&str, &str)] = &[("pubsub#access_model", "open")];
    // An older client published the list with the defaults (presence):
    // the open precondition fails, the client reconfigures and publishes
    // again, as Conversations does.
    let list = |ids: &[u32]| {
        let devices: String = ids.iter().map(|i| format!("<device id='{i}'/>")).collect();
        format!("<list xmlns='{AXOLOTL}'>{devices}</list>")
    };
    assert_eq!(
        publish_ok(&mut a, DEVICELIST, Some("current"), &list(&[1111])).await,
        "current"
    );
    let r = publish(
        &mut a,
        "p1",
        DEVICELIST,
        Some("current"),
        &list(&[1111, 2222]),
        Some(open),
    )
    .await;
    assert_error(&r, "cancel", "conflict", Some("precondition-not-met"));
    assert_ok(&configure(&mut a, "c1", DEVICELIST, open).await);
    assert_ok(
        &publish(
            &mut a,
            "p2",
            DEVICELIST,
            Some("current"),
            &list(&[1111, 2222]),
            Some(open),
        )
        .await,
    );
    for device in [1111, 2222] {
        let node = format!("{AXOLOTL}.bundles:{device}");
        let r = publish(
            &mut a,
            "p3",
            &node,
            Some("current"),
            &legacy_bundle(device),
            Some(open),
        )
        .await;
        assert_ok(&r);
    }
    // The list holds one item; the newest replaced the first.
    let r = items(&mut a, "l", A, DEVICELIST, "", "").await;
    assert_eq!(item_ids(&r), ["current"]);
    for reader in ["bob", "carol"] {
        let mut c = Client::online(srv.addr, reader, "pw", "r").await;
        let t = fetch(&mut c, A, DEVICELIST, "current").await;
        assert!(t.contains(&list(&[1111, 2222])), "{reader}: {t}");
        let r = items(&mut c, "m", A, DEVICELIST, " max_items='1'", "").await;
        assert_eq!(item_ids(&r), ["current"]);
        for device in [1111, 2222] {
            let node = format!("{AXOLOTL}.bundles:{device}");
            let t = fetch(&mut c, A, &node, "current").await;
            assert!(t.contains(&legacy_bundle(device)), "{reader} {node}");
        }
        let r = items(&mut c, "x", A, &format!("{AXOLOTL}.bundles:3333"), "", "").await;
        assert_error(&r, "cancel", "item-not-found", None);
    }
}

#[tokio::test]
async fn omemo2_devices_and_bundles() {
    let srv = server(&["alice", "bob", "carol"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let options: &[(&str, &str)] = &[("pubsub#max_items", "max"), ("pubsub#access_model", "open")];
    let devices = format!(
        "<devices xmlns='{OMEMO2}'><device id='12345' label='Phone'/><device id='4223'/></devices>"
    );
    for (resource, device) in [("phone", 12345), ("laptop", 4223)] {
        let mut c = Client::online(srv.addr, "alice", "pw", resource).await;
        let r = publish(
            &mut c,
            "d",
            DEVICES,
            Some("current"),
            &devices,
            Some(&[("pubsub#access_model", "open")]),
        )
        .await;
        assert_ok(&r);
        let r = publish(
            &mut c,
            "b",
            BUNDLES,
            Some(&device.to_string()),
            &omemo2_bundle(device),
            Some(options),
        )
        .await;
        assert_ok(&r);
    }
    // A third device comes and goes: its bundle is retracted.
    let mut a = Client::online(srv.addr, "alice", "pw", "tablet").await;
    assert_ok(
        &publish(
            &mut a,
            "b3",
            BUNDLES,
            Some("777"),
            &omemo2_bundle(777),
            Some(options),
        )
        .await,
    );
    let r = a
        .iq("r", &format!("<iq type='set' id='r'><pubsub xmlns='{PUBSUB}'><retract node='{BUNDLES}' notify='true'><item id='777'/></retract></pubsub></iq>"))
        .await;
    assert_ok(&r);
    for reader in ["bob", "carol"] {
        let mut c = Client::online(srv.addr, reader, "pw", "r").await;
        let t = fetch(&mut c, A, DEVICES, "current").await;
        assert!(t.contains(&devices), "{reader}: {t}");
        // Every device's bundle is there, several items in one node.
        let r = items(&mut c, "all", A, BUNDLES, "", "").await;
        assert_eq!(item_ids(&r), ["12345", "4223"], "{reader}");
        for device in [12345, 4223] {
            let t = fetch(&mut c, A, BUNDLES, &device.to_string()).await;
            assert!(t.contains(&omemo2_bundle(device)), "{reader} {device}");
        }
        let r = items(&mut c, "gone", A, BUNDLES, "", "<item id='777'/>").await;
        assert!(item_ids(&r).is_empty());
    }
}

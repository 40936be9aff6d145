//! Several stores over one database: two pools, two open files — two servers, in effect.
//!
//! Not part of [`store_tests!`](crate::store_tests), which hands each case one fresh store:
//! a store that can be opened more than once over the same data calls these itself, with
//! the stores it opened, on a multi-threaded runtime.

use std::sync::Arc;

use tokio::task::JoinSet;

use super::fixtures::{conversation, draft, joined, new_user, ok};
use crate::store::{MessageOrder, Store};
use crate::validation::Limit;

/// `tasks` tasks append `per_task` messages each to one conversation, task `t` through
/// `stores[t % stores.len()]`, all at once. Give it several stores over one database (two
/// pools, two open files: two servers, in effect) to check that `seq` stays safe across
/// processes. Every append must succeed; the `seq`s must be exactly `1..=N`; and through
/// every store, every message must read back and list in order, `message_count` must be `N`,
/// and the next append must get `N + 1`.
///
/// # Panics
///
/// If `stores` is empty, or the store breaks the contract.
pub async fn appends_are_gapless(stores: &[Arc<dyn Store>], tasks: usize, per_task: usize) {
    let first = stores.first().expect("at least one store");
    let u = new_user(&**first, "appender").await;
    let c = conversation(u.id, "busy");
    ok(first.create_conversation(&c).await, "create_conversation");
    let mut running = JoinSet::new();
    for t in 0..tasks {
        let store = Arc::clone(&stores[t % stores.len()]);
        let c = c.clone();
        running.spawn(async move {
            let mut acked = Vec::new();
            for i in 0..per_task {
                let m = ok(
                    store.append_message(draft(&c, &format!("{t}/{i}"))).await,
                    "a concurrent append_message",
                );
                acked.push(m);
            }
            acked
        });
    }
    let mut acked = Vec::new();
    while let Some(done) = running.join_next().await {
        acked.extend(joined(done));
    }
    let n = (tasks * per_task) as u64;
    let mut seqs: Vec<u64> = acked.iter().map(|m| m.seq).collect();
    seqs.sort_unstable();
    let duplicates = seqs.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(
        duplicates, 0,
        "{duplicates} seqs were handed out twice under concurrent appends"
    );
    assert_eq!(
        seqs,
        (1..=n).collect::<Vec<_>>(),
        "{n} concurrent appends must get exactly the seqs 1..={n}"
    );
    acked.sort_by_key(|m| m.seq);
    for store in stores {
        let mut listed = Vec::new();
        let mut after = None;
        loop {
            let page = ok(
                store
                    .list_messages(c.id, MessageOrder::Ascending { after }, Limit::MAX)
                    .await,
                "list_messages",
            );
            let Some(last) = page.last() else { break };
            after = Some(last.seq);
            listed.extend(page);
        }
        assert_eq!(
            listed.len(),
            acked.len(),
            "every acknowledged append must be listed"
        );
        assert_eq!(
            listed, acked,
            "the listed messages must be the acknowledged ones, by seq"
        );
        for m in &acked {
            assert_eq!(
                ok(store.get_message(m.id).await, "get_message").as_ref(),
                Some(m),
                "an acknowledged message must be readable"
            );
        }
        let after = ok(store.get_conversation(c.id).await, "get_conversation").expect("exists");
        assert_eq!(
            after.message_count, n,
            "message_count must be {n} after {n} concurrent appends"
        );
    }
    let next = ok(
        first.append_message(draft(&c, "last")).await,
        "append_message",
    );
    assert_eq!(next.seq, n + 1, "the next append continues the numbering");
}

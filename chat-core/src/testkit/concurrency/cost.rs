//! Cost: the contract says a list costs in proportion to the page, not to everything
//! stored. Measured within the case, as a ratio of two sizes read under the same load, so
//! that a slow or busy machine slows both alike.
#![deny(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::store::{MessageOrder, Store};
use crate::testkit::fixtures::{append_many, conversation, new_user, ok};
use crate::validation::Limit;

/// The messages of the small conversation of [`newest_page_cost_follows_the_page`]; the
/// large one holds [`COST_SIZE_RATIO`] times as many.
pub const COST_SMALL: usize = 150;
/// How many times larger the large conversation is.
pub const COST_SIZE_RATIO: usize = 20;
/// How much slower the newest page of the large conversation may be (median against
/// median) before the case calls it proportional to the size. A store that walks the whole
/// conversation is about [`COST_SIZE_RATIO`] times slower; one that seeks is about as fast.
pub const COST_ALLOWED_RATIO: f64 = 6.0;
/// How many times each page is read; the medians are compared.
const READS: usize = 61;

/// The newest page (20 messages, newest first) of a conversation of
/// `COST_SMALL × COST_SIZE_RATIO` messages takes no longer, in proportion, than that of a
/// conversation of [`COST_SMALL`]: the median of [`READS`] reads of each, taken in turns,
/// may differ by at most [`COST_ALLOWED_RATIO`].
pub async fn newest_page_cost_follows_the_page(store: Arc<dyn Store>) {
    let u = new_user(&*store, "measured").await;
    let small = conversation(u.id, "small");
    let large = conversation(u.id, "large");
    for c in [&small, &large] {
        ok(store.create_conversation(c).await, "create_conversation");
    }
    append_many(&store, &small, COST_SMALL, 8).await;
    append_many(&store, &large, COST_SMALL * COST_SIZE_RATIO, 16).await;
    let page = Limit::new(20).expect("a valid limit");
    let newest = MessageOrder::Descending { before: None };
    // Warm whatever caches the store has, for both alike.
    for c in [&small, &large] {
        ok(
            store.list_messages(c.id, newest, page).await,
            "list_messages",
        );
    }
    let mut times = [Vec::with_capacity(READS), Vec::with_capacity(READS)];
    for _ in 0..READS {
        for (i, c) in [&small, &large].into_iter().enumerate() {
            let start = Instant::now();
            let got = ok(
                store.list_messages(c.id, newest, page).await,
                "list_messages",
            );
            times[i].push(start.elapsed());
            assert_eq!(got.len(), 20, "the newest page must be full");
        }
    }
    let [small_time, large_time] = times.map(median);
    let ratio = large_time.as_secs_f64() / small_time.as_secs_f64().max(1e-9);
    assert!(
        ratio <= COST_ALLOWED_RATIO,
        "list_messages (newest page of 20) took a median {large_time:?} on a conversation of \
         {} messages against {small_time:?} on one of {COST_SMALL}: {ratio:.1} times as long \
         (at most {COST_ALLOWED_RATIO} allowed). A page must cost in proportion to the page, \
         not to the conversation",
        COST_SMALL * COST_SIZE_RATIO
    );
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

//! Cost: the contract says a list costs in proportion to the page, not to everything
//! stored. Measured within the case, as ratios of medians of many reads, so that a slow
//! machine is slow for both sides alike and a moment's preemption does not count.
#![deny(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::Conversation;
use crate::store::{MessageOrder, Store};
use crate::testkit::fixtures::{append_many, conversation, new_user, ok};
use crate::validation::Limit;

/// The messages of the small conversation of [`newest_page_cost_follows_the_page`]; the
/// large one holds [`COST_SIZE_RATIO`] times as many.
pub const COST_SMALL: usize = 100;
/// How many times larger the large conversation is.
pub const COST_SIZE_RATIO: usize = 50;
/// How much slower a page may be (median against median) before the case calls its cost
/// proportional to the size. Pages of the stores of this workspace measure 0.9 to 1.4
/// times; a store that walks the whole conversation is tens of times slower. (SQLite
/// without its index on `(conversation_id, seq)` measures 4 to 6 times: too close to
/// catch by timing, which is why `chat-store-sql` also checks its query plans.)
pub const COST_ALLOWED_RATIO: f64 = 4.0;
/// How many times each page is read; the medians are compared.
pub const COST_READS: usize = 61;

/// The newest page (20 messages, newest first) of a conversation of
/// `COST_SMALL × COST_SIZE_RATIO` messages takes no longer, in proportion, than that of a
/// conversation of [`COST_SMALL`] (the median of [`COST_READS`] reads of each, taken in turns);
/// and the small conversation's page takes no longer beside the large one than it took
/// before the large one was written. Each ratio is at most [`COST_ALLOWED_RATIO`].
pub async fn newest_page_cost_follows_the_page(store: Arc<dyn Store>) {
    let u = new_user(&*store, "measured").await;
    let small = conversation(u.id, "small");
    let large = conversation(u.id, "large");
    for c in [&small, &large] {
        ok(store.create_conversation(c).await, "create_conversation");
    }
    append_many(&store, &small, COST_SMALL, 8).await;
    // The small conversation's page while the store holds little else: a store that walks
    // every message it holds (a table without an index) is slow for both conversations
    // once the large one is there, which only this measure shows.
    let [alone] = medians(&*store, [&small]).await;
    append_many(&store, &large, COST_SMALL * COST_SIZE_RATIO, 16).await;
    let [small_time, large_time] = medians(&*store, [&small, &large]).await;
    let large_size = COST_SMALL * COST_SIZE_RATIO;
    let comparisons = [
        (
            format!("a conversation of {large_size} messages"),
            large_time,
            format!("one of {COST_SMALL}, read in turns with it"),
            small_time,
        ),
        (
            format!("a conversation of {COST_SMALL} beside one of {large_size}"),
            small_time,
            "the same conversation before the large one was written".to_owned(),
            alone,
        ),
    ];
    for (what, time, against, base) in comparisons {
        let ratio = time.as_secs_f64() / base.as_secs_f64().max(1e-9);
        assert!(
            ratio <= COST_ALLOWED_RATIO,
            "list_messages (newest page of 20) took a median {time:?} on {what} against \
             {base:?} on {against}: {ratio:.1} times as long (at most {COST_ALLOWED_RATIO} \
             allowed). A page must cost in proportion to the page, not to the conversation \
             or to everything stored"
        );
    }
}

/// The median time of the newest page of each of `conversations`, read [`COST_READS`] times in
/// turns (so that a busy machine slows each alike), after one read of each to warm caches.
async fn medians<const N: usize>(
    store: &dyn Store,
    conversations: [&Conversation; N],
) -> [Duration; N] {
    let page = Limit::new(20).expect("a valid limit");
    let newest = MessageOrder::Descending { before: None };
    for c in conversations {
        ok(
            store.list_messages(c.id, newest, page).await,
            "list_messages",
        );
    }
    let mut times: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::with_capacity(COST_READS));
    for _ in 0..COST_READS {
        for (i, c) in conversations.into_iter().enumerate() {
            let start = Instant::now();
            let got = ok(
                store.list_messages(c.id, newest, page).await,
                "list_messages",
            );
            times[i].push(start.elapsed());
            assert_eq!(got.len(), 20, "the newest page must be full");
        }
    }
    times.map(median)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

//! The engine's outlet: numbers each event, journals it, then broadcasts it.

use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::events::{Envelope, Event};
use crate::redact::Redactor;
use crate::store::{Journal, StoreError, now_ms};

/// Journals and broadcasts the events of one run. Cheap to clone.
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Inner>,
}

struct Inner {
    run: i64,
    // The lock keeps sequence numbers, journal order and broadcast order the same.
    next_seq: Mutex<u64>,
    journal: Option<Journal>,
    tx: broadcast::Sender<Envelope>,
    /// Applied to every event before it is journaled or broadcast.
    redactor: Redactor,
}

/// How many events a slow subscriber may fall behind before it loses some (it is told).
const BROADCAST_CAPACITY: usize = 16 * 1024;

impl Emitter {
    /// An emitter for `run` whose next event gets number `next_seq`. Without a journal,
    /// events are only broadcast (engine tests).
    pub fn new(run: i64, next_seq: u64, journal: Option<Journal>) -> Self {
        Emitter::redacting(run, next_seq, journal, Redactor::default())
    }

    /// An emitter like [`Emitter::new`] that hides `redactor`'s secrets (and any URL's
    /// credentials) in every event: nothing journaled or broadcast carries them.
    pub fn redacting(
        run: i64,
        next_seq: u64,
        journal: Option<Journal>,
        redactor: Redactor,
    ) -> Self {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        Emitter {
            inner: Arc::new(Inner {
                run,
                next_seq: Mutex::new(next_seq.max(1)),
                journal,
                tx,
                redactor,
            }),
        }
    }

    /// The run id.
    pub fn run(&self) -> i64 {
        self.inner.run
    }

    /// The broadcast side, to subscribe.
    pub fn sender(&self) -> broadcast::Sender<Envelope> {
        self.inner.tx.clone()
    }

    fn envelope(&self, seq: &mut u64, event: Event) -> Envelope {
        let env = Envelope {
            run: self.inner.run,
            seq: *seq,
            at_ms: now_ms(),
            event: self.inner.redactor.serde(event),
        };
        *seq += 1;
        env
    }

    /// Journals `event`, waits until it is durable, then broadcasts it.
    pub fn emit(&self, event: Event) -> Result<(), StoreError> {
        let mut seq = self
            .inner
            .next_seq
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let env = self.envelope(&mut seq, event);
        if let Some(journal) = &self.inner.journal {
            journal.append_durable(env.clone())?;
        }
        let _ = self.inner.tx.send(env);
        Ok(())
    }

    /// Queues a log event for the journal's next batch and broadcasts it.
    pub fn log(&self, event: Event) {
        let mut seq = self
            .inner
            .next_seq
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let env = self.envelope(&mut seq, event);
        if let Some(journal) = &self.inner.journal
            && let Err(e) = journal.append(env.clone())
        {
            tracing::error!("cannot journal a log line: {e}");
        }
        let _ = self.inner.tx.send(env);
    }
}

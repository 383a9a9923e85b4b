//! One connection to a PostgreSQL journal, on a thread of its own with its own small
//! runtime, so the journal's blocking API (the engine waits for each commit) works the same
//! from any caller. A connection lost (the server restarted) is made again on the next call,
//! for up to [`RECONNECT_FOR`], and its `LISTEN`s are issued again.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, Client};

use super::Target;
use crate::store::{Result, StoreError};

/// How long a lost connection is tried again before the call fails.
pub const RECONNECT_FOR: Duration = Duration::from_secs(60);

/// What a listener hears: a notification, or that the connection was lost (anything may
/// have changed meanwhile).
#[derive(Clone, Debug)]
pub enum Wake {
    /// `NOTIFY channel, payload`.
    Note {
        /// The channel.
        channel: String,
        /// The payload (a run id).
        payload: String,
    },
    /// The connection ended.
    Lost,
}

struct Shared {
    target: Arc<Target>,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    wakes: broadcast::Sender<Wake>,
    listening: Mutex<BTreeSet<&'static str>>,
}

/// A connection and the thread that runs it.
pub struct Conn {
    handle: tokio::runtime::Handle,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Whether an error is the connection's (worth a reconnect), not the statement's.
pub fn transient(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        None => true,
        // Class 08 (connection exception) and 57P (operator intervention: shutdown,
        // cannot connect now).
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("57P")
        }
    }
}

impl Conn {
    /// Connects (once, failing at once when the server cannot be reached or refuses).
    pub fn open(target: Arc<Target>) -> Result<Conn> {
        let (handle_tx, handle_rx) = std::sync::mpsc::sync_channel(1);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("journal-pg".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                rt.block_on(async move {
                    let _ = stop_rx.await;
                });
            })
            .map_err(|e| StoreError::Writer(e.to_string()))?;
        let handle = handle_rx
            .recv()
            .map_err(|e| StoreError::Writer(e.to_string()))?
            .map_err(StoreError::Writer)?;
        let (wakes, _) = broadcast::channel(1024);
        let conn = Conn {
            handle,
            shared: Arc::new(Shared {
                target,
                client: tokio::sync::Mutex::new(None),
                wakes,
                listening: Mutex::new(BTreeSet::new()),
            }),
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        conn.call_once(|_| async { Ok(()) })?;
        Ok(conn)
    }

    /// The URL, for messages.
    pub fn shown(&self) -> String {
        self.shared.target.shown().to_owned()
    }

    fn error(&self, source: tokio_postgres::Error) -> StoreError {
        StoreError::Postgres {
            target: self.shown(),
            source,
        }
    }

    /// Runs `f` on the connection and waits for it; a lost connection is made again and
    /// `f` run again, for up to [`RECONNECT_FOR`].
    pub fn call<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(Arc<Client>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let f = Arc::new(f);
        let deadline = std::time::Instant::now() + RECONNECT_FOR;
        let mut pause = Duration::from_millis(100);
        loop {
            let g = f.clone();
            match self.call_once(move |c| g(c)) {
                Err(StoreError::Postgres { source, .. })
                    if transient(&source) && std::time::Instant::now() < deadline =>
                {
                    tracing::warn!("journal {}: {source}; trying again", self.shown());
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }

    fn call_once<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Client>) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let shared = self.shared.clone();
        self.handle.spawn(async move {
            let result = match client(&shared).await {
                Ok(c) => f(c).await,
                Err(e) => Err(e),
            };
            let _ = tx.send(result);
        });
        // Blocking on purpose, as the SQLite journal does: the caller acts after the answer.
        match rx.recv() {
            Ok(r) => r.map_err(|e| self.error(e)),
            Err(e) => Err(StoreError::Writer(e.to_string())),
        }
    }

    /// Listens on `channel` (again after every reconnect); returns the receiver of wakes,
    /// subscribed before the `LISTEN` so nothing committed after this call is missed.
    pub fn listen(&self, channel: &'static str) -> Result<broadcast::Receiver<Wake>> {
        let rx = self.shared.wakes.subscribe();
        let fresh = self
            .shared
            .listening
            .lock()
            .map(|mut l| l.insert(channel))
            .unwrap_or(true);
        if fresh {
            self.call(move |c| async move { c.batch_execute(&format!("LISTEN {channel}")).await })?;
        }
        Ok(rx)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The live client, connecting (and listening again) when there is none.
async fn client(shared: &Shared) -> std::result::Result<Arc<Client>, tokio_postgres::Error> {
    let mut slot = shared.client.lock().await;
    if let Some(c) = slot.as_ref()
        && !c.is_closed()
    {
        return Ok(c.clone());
    }
    let client = Arc::new(connect(&shared.target, shared.wakes.clone()).await?);
    let channels: Vec<&'static str> = shared
        .listening
        .lock()
        .map(|l| l.iter().copied().collect())
        .unwrap_or_default();
    for channel in channels {
        client.batch_execute(&format!("LISTEN {channel}")).await?;
    }
    *slot = Some(client.clone());
    Ok(client)
}

async fn connect(
    target: &Target,
    wakes: broadcast::Sender<Wake>,
) -> std::result::Result<Client, tokio_postgres::Error> {
    match &target.tls {
        None => {
            let (client, connection) = target.config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(drive(connection, wakes));
            Ok(client)
        }
        Some(tls) => {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new((**tls).clone());
            let (client, connection) = target.config.connect(tls).await?;
            tokio::spawn(drive(connection, wakes));
            Ok(client)
        }
    }
}

/// Runs the connection, handing its notifications to the listeners; says when it ends.
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    wakes: broadcast::Sender<Wake>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(AsyncMessage::Notification(n)) => {
                let _ = wakes.send(Wake::Note {
                    channel: n.channel().to_owned(),
                    payload: n.payload().to_owned(),
                });
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!("journal connection ended: {e}");
                break;
            }
        }
    }
    let _ = wakes.send(Wake::Lost);
}

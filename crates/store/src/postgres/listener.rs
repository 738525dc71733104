//! PostgreSQL `LISTEN` turned into a broadcast channel, so that a live page
//! on one instance hears what another instance committed. One connection
//! per listener, opened on the first subscription (a command that never
//! watches never opens it) and opened again after it breaks.

use super::connection::pg_err;
use crate::StoreError;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Config, NoTls};

/// Room for a burst while a slow subscriber catches up; past it the
/// subscriber sees `Lagged` and reloads its page.
const CAPACITY: usize = 1024;

const RECONNECT_FIRST: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(10);

/// How long `subscribe_ready` waits for the `LISTEN` to be in place.
const READY_WAIT: Duration = Duration::from_secs(10);

pub(crate) struct Listener<T> {
    channel: &'static str,
    parse: fn(&str) -> Option<Vec<T>>,
    config: Config,
    /// The runtime the store was opened in: `subscribe` is not async and may
    /// be called from a thread outside it.
    runtime: tokio::runtime::Handle,
    events: broadcast::Sender<T>,
    listening: watch::Sender<bool>,
    task: OnceLock<JoinHandle<()>>,
}

impl<T: Clone + Send + 'static> Listener<T> {
    /// Must be called inside a Tokio runtime.
    pub fn new(config: Config, channel: &'static str, parse: fn(&str) -> Option<Vec<T>>) -> Self {
        Self {
            channel,
            parse,
            config,
            runtime: tokio::runtime::Handle::current(),
            events: broadcast::channel(CAPACITY).0,
            listening: watch::channel(false).0,
            task: OnceLock::new(),
        }
    }

    /// Events committed from now on, by any instance, this one included.
    /// The first call starts listening; events committed before the `LISTEN`
    /// is in place (a few milliseconds) are not seen.
    pub fn subscribe(&self) -> broadcast::Receiver<T> {
        let receiver = self.events.subscribe();
        self.task.get_or_init(|| {
            self.runtime.spawn(listen(
                self.config.clone(),
                self.channel,
                self.parse,
                self.events.clone(),
                self.listening.clone(),
            ))
        });
        receiver
    }

    /// Like `subscribe`, and waits until the `LISTEN` is in place, so that
    /// every event committed after this returns is seen.
    pub async fn subscribe_ready(&self) -> Result<broadcast::Receiver<T>, StoreError> {
        let receiver = self.subscribe();
        let mut listening = self.listening.subscribe();
        match tokio::time::timeout(READY_WAIT, listening.wait_for(|l| *l)).await {
            Ok(Ok(_)) => Ok(receiver),
            _ => Err(StoreError::Busy(format!(
                "cannot listen on {}: no database connection",
                self.channel
            ))),
        }
    }
}

impl<T> Drop for Listener<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

/// Listens until aborted, connecting again after a failure with a growing pause.
async fn listen<T: Clone + Send + 'static>(
    config: Config,
    channel: &'static str,
    parse: fn(&str) -> Option<Vec<T>>,
    events: broadcast::Sender<T>,
    listening: watch::Sender<bool>,
) {
    let mut pause = RECONNECT_FIRST;
    loop {
        match listen_once(&config, channel, parse, &events, &listening).await {
            Ok(()) => pause = RECONNECT_FIRST,
            Err(e) => {
                tracing::warn!(channel, error = %e, "database listener failed; retrying");
            }
        }
        listening.send_replace(false);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RECONNECT_MAX);
    }
}

/// One connection's life: returns when it ends.
async fn listen_once<T: Clone + Send + 'static>(
    config: &Config,
    channel: &'static str,
    parse: fn(&str) -> Option<Vec<T>>,
    events: &broadcast::Sender<T>,
    listening: &watch::Sender<bool>,
) -> Result<(), StoreError> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(pg_err)?;
    // Notifications arrive through the connection, which must be polled for
    // the LISTEN itself to be answered: both run here, in one task, so that
    // aborting the task closes the connection.
    let mut drive = std::pin::pin!(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) if n.channel() == channel => {
                    match parse(n.payload()) {
                        // No receiver yet is not an error.
                        Some(batch) => {
                            for event in batch {
                                drop(events.send(event));
                            }
                        }
                        None => tracing::warn!(channel, "unreadable notification ignored"),
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(pg_err(e)),
                None => return Ok(()),
            }
        }
    });
    let listen = format!("LISTEN {channel}");
    tokio::select! {
        listened = client.batch_execute(&listen) => {
            listened.map_err(pg_err)?;
        }
        ended = &mut drive => return ended,
    }
    listening.send_replace(true);
    tracing::debug!(channel, "listening for database notifications");
    let ended = drive.await;
    drop(client);
    ended
}

//! SQLite's writer thread: the one connection of this process's write transactions
//! ([`super::Db::write`]), which commits the writes waiting for it together (group commit).
//!
//! SQLite admits one writer at a time anyway. Handing each write to a thread of its own made
//! the lock pass between threads that the scheduler had to wake first, leaving it idle between
//! transactions under load; one thread draining a queue never waits to be woken while work is
//! queued, pays one `BEGIN`/`COMMIT` and one WAL append per batch instead of per request, and
//! keeps its page cache warm (SQLite drops a connection's cache whenever another connection has
//! written). Each write runs in its own savepoint, so a write that fails rolls back alone; its
//! caller hears back only once the batch has committed. Other processes on the same database
//! still take turns through the busy timeout.

use diesel::Connection as _;
use diesel::connection::TransactionManager as _;

use super::{Conn, StorageError};

/// A write waiting for the writer thread: it runs its closure in a savepoint and returns what
/// delivers the closure's result (or the batch's commit error) to the caller.
type Job = Box<dyn FnOnce(&mut Conn) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Option<&diesel::result::Error>) + Send>;

/// Writes committed in one transaction at most, so that no caller waits behind a long batch.
const MAX_BATCH: usize = 64;

pub(super) struct Writer {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Writer {
    pub(super) fn start(mut conn: Conn) -> Result<Self, StorageError> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || {
                // Ends when every handle to the database is dropped.
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    batch.extend(queue.try_iter().take(MAX_BATCH - 1));
                    Self::commit(&mut conn, batch);
                }
            })
            .map_err(|e| StorageError::Task(format!("cannot start the database writer: {e}")))?;
        Ok(Self { jobs })
    }

    fn commit(conn: &mut Conn, batch: Vec<Job>) {
        let mut replies = Vec::with_capacity(batch.len());
        let outcome = super::write_transaction(conn, |conn| {
            replies.extend(batch.into_iter().map(|job| job(conn)));
            Ok::<_, diesel::result::Error>(())
        });
        let error = outcome.err();
        for reply in replies {
            reply(error.as_ref());
        }
    }

    /// Runs `f` in a savepoint of the next batch; returns once the batch has committed.
    pub(super) async fn write<F, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn| {
            // A panic must not take the writer thread, or the batch, with it: the savepoint is
            // rolled back and the caller gets an error (its reply channel is dropped).
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                conn.transaction::<T, E, _>(f)
            }));
            let outcome = match outcome {
                Ok(outcome) => Some(outcome),
                Err(_) => {
                    let _ = <Conn as diesel::Connection>::TransactionManager::rollback_transaction(
                        conn,
                    );
                    None
                }
            };
            Box::new(move |commit: Option<&diesel::result::Error>| {
                if let Some(outcome) = outcome {
                    let _ = reply.send(match (outcome, commit) {
                        (Ok(_), Some(error)) => Err(commit_error(error).into()),
                        (outcome, _) => outcome,
                    });
                }
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| StorageError::Task("the database writer has stopped".into()))?;
        result
            .await
            .map_err(|_| StorageError::Task("the write transaction panicked".into()))?
    }
}

/// What a caller of [`super::Db::write`] gets when its write was committed, or failed.
fn commit_error(error: &diesel::result::Error) -> StorageError {
    StorageError::Task(format!("the write transaction did not commit: {error}"))
}

//! What the database handle reports to the metrics: connections taken from the pool, how long
//! callers waited for one (or for the writer thread), and the writer thread's queue. Kept in
//! its own module so that [`super::Db`] only calls in here, in a few lines.

use std::time::Instant;

use servicekit::metrics::prometheus_client::metrics::gauge::Gauge;
use servicekit::metrics::{InUse, PoolMetrics, Registry};
use tokio::sync::{AcquireError, Semaphore, SemaphorePermit};

use super::writer::Job;

/// The database's metrics; cheap to clone, shared by every clone of the handle.
#[derive(Clone, Debug)]
pub struct DbMetrics {
    pool: PoolMetrics,
    writer_queue: Gauge,
}

impl DbMetrics {
    /// The metrics of a pool of `pool_size` connections.
    pub(super) fn new(pool_size: u32) -> Self {
        Self {
            pool: PoolMetrics::new(pool_size),
            writer_queue: Gauge::default(),
        }
    }

    /// Registers `db_pool_connections_in_use`, `db_pool_connections_max`,
    /// `db_pool_wait_seconds` and `db_writer_queue_depth`.
    pub fn register(&self, registry: &mut Registry) {
        self.pool.register(
            registry,
            "Time a database call waited for a pooled connection (reads) or for the writer thread to take it (writes)",
        );
        registry.register(
            "db_writer_queue_depth",
            "Write transactions waiting for the SQLite writer thread",
            self.writer_queue.clone(),
        );
    }

    /// Pooled connections in use now.
    pub fn connections_in_use(&self) -> i64 {
        self.pool.connections_in_use()
    }

    /// Writes waiting for the writer thread now.
    pub fn writer_queue_depth(&self) -> i64 {
        self.writer_queue.get()
    }

    /// Takes a permit for a pooled connection, timing the wait; the connection counts as in
    /// use while the returned pair lives.
    pub(super) async fn acquire<'a>(
        &self,
        permits: &'a Semaphore,
    ) -> Result<(SemaphorePermit<'a>, InUse), AcquireError> {
        let since = Instant::now();
        let permit = permits.acquire().await?;
        self.pool.waited(since);
        Ok((permit, self.pool.in_use()))
    }

    /// `job`, counted in the writer's queue until the writer thread starts it (or drops it),
    /// its wait recorded when it starts.
    pub(super) fn queued(&self, job: Job) -> Job {
        self.writer_queue.inc();
        let waiting = Waiting(self.writer_queue.clone());
        let pool = self.pool.clone();
        let since = Instant::now();
        Box::new(move |conn| {
            pool.waited(since);
            drop(waiting);
            job(conn)
        })
    }
}

/// A write in the queue: leaves it when dropped.
struct Waiting(Gauge);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::sync::oneshot;

    use super::super::{Db, StorageError};

    async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn queued_writes_and_connections_in_use_are_counted_while_they_last() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db.sqlite3").to_string_lossy(), 2).unwrap();
        let metrics = db.metrics().clone();

        // The writer thread held by one write; three more queue behind it.
        let (started, writer_busy) = oneshot::channel::<()>();
        let (release_writer, held) = oneshot::channel::<()>();
        let blocker = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(move |_| {
                    let _ = started.send(());
                    let _ = held.blocking_recv();
                    Ok::<_, StorageError>(())
                })
                .await
            }
        });
        writer_busy.await.unwrap();
        let writes: Vec<_> = (0..3)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move { db.write(|_| Ok::<_, StorageError>(())).await })
            })
            .collect();
        eventually("three writes queued", || metrics.writer_queue_depth() == 3).await;

        // A read holding its connection.
        let (release_reader, reading) = oneshot::channel::<()>();
        let reader = tokio::spawn({
            let db = db.clone();
            async move {
                db.run(move |_| {
                    let _ = reading.blocking_recv();
                    Ok::<_, StorageError>(())
                })
                .await
            }
        });
        eventually("one connection in use", || {
            metrics.connections_in_use() == 1
        })
        .await;

        release_writer.send(()).unwrap();
        release_reader.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        reader.await.unwrap().unwrap();
        for write in writes {
            write.await.unwrap().unwrap();
        }
        assert_eq!(metrics.writer_queue_depth(), 0);
        assert_eq!(metrics.connections_in_use(), 0);
    }
}

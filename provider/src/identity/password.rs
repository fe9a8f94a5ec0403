//! bcrypt hashing off the async executor, with a bound on concurrent hashes so that a burst of
//! logins queues instead of starving every other request of CPU.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// A password hashing failure (a bug or an exhausted runtime, never a wrong password).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// bcrypt refused the input.
    #[error("password hashing failed: {0}")]
    Hash(#[from] bcrypt::BcryptError),
    /// The blocking task did not complete.
    #[error("password hashing task failed: {0}")]
    Task(String),
}

/// Hashes and verifies passwords with bcrypt; cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    cost: u32,
    permits: Arc<Semaphore>,
    /// A hash of a random password at the same cost, verified instead when the user does not
    /// exist, so that an unknown username takes as long as a wrong password. Computed in the
    /// background after start-up: at cost 12 it takes longer than the whole start should.
    dummy_hash: Arc<tokio::sync::OnceCell<String>>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher at `cost` running at most one hash per core at a time.
    pub async fn new(cost: u32) -> Result<Self, PasswordError> {
        let parallel = std::thread::available_parallelism().map_or(2, usize::from);
        let hasher = Self {
            cost,
            permits: Arc::new(Semaphore::new(parallel.max(1))),
            dummy_hash: Arc::new(tokio::sync::OnceCell::new()),
        };
        let background = hasher.clone();
        tokio::spawn(async move {
            if let Err(e) = background.dummy_hash().await {
                tracing::warn!("computing the dummy password hash failed: {e}");
            }
        });
        Ok(hasher)
    }

    async fn dummy_hash(&self) -> Result<String, PasswordError> {
        let cost = self.cost;
        self.dummy_hash
            .get_or_try_init(|| async move {
                let dummy = crate::storage::new_id();
                run_blocking(move || bcrypt::hash(dummy, cost))
                    .await?
                    .map_err(Into::into)
            })
            .await
            .cloned()
    }

    /// The configured bcrypt cost.
    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let _permit = self.acquire().await?;
        let cost = self.cost;
        run_blocking(move || bcrypt::hash(password, cost))
            .await?
            .map_err(Into::into)
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is no user, so
    /// both cases cost the same. A malformed stored hash counts as a mismatch.
    pub async fn verify(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        let _permit = self.acquire().await?;
        let known = hash.is_some();
        let hash = match hash {
            Some(hash) => hash,
            None => self.dummy_hash().await?,
        };
        let matched =
            run_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false)).await?;
        Ok(known && matched)
    }

    async fn acquire(&self) -> Result<tokio::sync::SemaphorePermit<'_>, PasswordError> {
        self.permits
            .acquire()
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))
    }
}

/// Synchronous hashing for the CLI, which has no executor to protect.
pub fn hash_blocking(password: &str, cost: u32) -> Result<String, PasswordError> {
    Ok(bcrypt::hash(password, cost)?)
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PasswordError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PasswordError::Task(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let hasher = PasswordHasher::new(4).await.expect("hasher");
        let hash = hasher.hash("correct horse".into()).await.expect("hash");
        assert!(
            hasher
                .verify("correct horse".into(), Some(hash.clone()))
                .await
                .expect("ok")
        );
        assert!(!hasher.verify("wrong".into(), Some(hash)).await.expect("ok"));
        assert!(!hasher.verify("anything".into(), None).await.expect("ok"));
        assert!(
            !hasher
                .verify("x".into(), Some("not a hash".into()))
                .await
                .expect("ok")
        );
    }
}

//! The password-hashing pool: a few dedicated threads that run every argon2
//! call.
//!
//! argon2id with default parameters works in 19 MiB of memory per call.
//! Allocated and freed per call, that memory was kept by glibc's malloc once
//! its mmap threshold adapted: measured here, 40 concurrent registrations left
//! `roomcast serve` at 430 MiB RSS for good, and 600 on tokio's blocking pool
//! at 2.8 GiB. So each of the [`threads`] hashing threads owns one block of
//! working memory, allocated on first use and reused by every call after it:
//! the memory for hashing is bounded at `threads() × 19 MiB`, and so is the CPU.
//!
//! Limit: at most [`QUEUE`] jobs wait; past that, callers wait (async) for a
//! place, so a login flood slows logins down instead of growing memory.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{mpsc, oneshot};

/// Largest argon2 working memory a stored hash may ask for (64 MiB); a hash
/// asking for more is treated as not matching.
pub const MAX_BLOCKS: usize = 64 * 1024;

thread_local! {
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// `argon.hash_password(password, salt)` for an argon2id, v19 `argon`, computed
/// in this thread's reusable working memory. Produces exactly what the
/// `argon2` crate's own hasher does.
pub fn argon2_hash<'a>(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: Salt<'a>,
) -> argon2::password_hash::Result<PasswordHash<'a>> {
    let params = argon.params().clone();
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return Err(argon2::password_hash::Error::ParamValueInvalid(
            argon2::password_hash::errors::InvalidValue::TooLong,
        ));
    }
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = MEMORY.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() < blocks {
            m.resize(blocks, Block::default());
        }
        Output::init_with(len, |out| {
            argon
                .hash_password_into_with_memory(password, salt_bytes, out, &mut m[..blocks])
                .map_err(Into::into)
        })
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt),
        hash: Some(output),
    })
}

/// Whether `password` matches `hash` (constant-time comparison of outputs).
pub fn argon2_verify(password: &[u8], hash: &PasswordHash<'_>) -> bool {
    let (Some(salt), Some(expected)) = (hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    if algorithm != Algorithm::Argon2id {
        return false;
    }
    let version = hash.version.map(Version::try_from).transpose();
    let (Ok(version), Ok(mut params)) = (version, Params::try_from(hash)) else {
        return false;
    };
    if params.output_len() != Some(expected.len()) {
        params = match argon2::ParamsBuilder::new()
            .m_cost(params.m_cost())
            .t_cost(params.t_cost())
            .p_cost(params.p_cost())
            .output_len(expected.len())
            .build()
        {
            Ok(p) => p,
            Err(_) => return false,
        };
    }
    let argon = Argon2::new(algorithm, version.unwrap_or_default(), params);
    match argon2_hash(&argon, password, salt) {
        Ok(computed) => computed.hash.as_ref() == Some(expected),
        Err(_) => false,
    }
}

/// Jobs waiting for a hashing thread before callers wait.
pub const QUEUE: usize = 1024;

type Job = Box<dyn FnOnce() + Send>;

/// Threads in the pool: the number of CPUs, at most 4.
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
}

fn sender() -> &'static mpsc::Sender<Job> {
    static POOL: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads() {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("roomcast-hash-{i}"))
                .spawn(move || {
                    loop {
                        // Only the waiting thread holds the lock; it is released
                        // before the job runs.
                        let job = match rx.lock() {
                            Ok(mut rx) => rx.blocking_recv(),
                            Err(_) => None,
                        };
                        match job {
                            Some(job) => job(),
                            None => return,
                        }
                    }
                })
                .expect("spawning a hashing thread");
        }
        tx
    })
}

/// Run `f` on the pool and wait for its result (`None` if the pool is gone).
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    sender().send(job).await.ok()?;
    rx.await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[tokio::test]
    async fn many_jobs_run_on_a_few_named_threads() {
        let jobs = (0..64).map(|i| {
            tokio::spawn(run(move || {
                (i, std::thread::current().name().map(str::to_owned))
            }))
        });
        let mut names = HashSet::new();
        for (n, j) in jobs.enumerate() {
            let (i, name) = j.await.unwrap().unwrap();
            assert_eq!(i, n);
            names.insert(name.unwrap());
        }
        assert!(names.len() <= threads(), "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("roomcast-hash-")));
    }
}

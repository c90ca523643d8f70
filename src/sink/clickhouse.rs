//! The ClickHouse sink: records become rows, rows become batches, and a sender thread of
//! its own inserts them, so a slow or absent server never holds up the packets.
//!
//! The record path only appends a row to the open batch under an uncontended lock. Sealed
//! batches wait in memory (bounded); beyond that bound, and for as long as ClickHouse fails,
//! they go to the [`Spool`]. No lock is held while a batch is written to or read from disk,
//! or sent: a slow disk or server holds up the thread that waits on it, not the others. The sender always sends the oldest batch it knows of, in
//! memory or in the spool, so rows arrive in the order they were made, across outages and
//! across runs. A batch whose insert failed or timed out is spooled and sent again later;
//! if the first attempt did land after all, the table's key (the connection) collapses
//! the copies ([`super::schema`]).
//!
//! At the end of a run the sender delivers what it can; after the first failure, or once
//! the closing deadline passes, everything not delivered is left in the spool for the next
//! run.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::census::CensusConfig;
use crate::record::Record;

use super::http::Client;
use super::row::{write_row, Origin};
use super::schema;
use super::spool::{delete_batch, read_batch, rows_in, write_batch, Reservation, Spool};
use super::target::{Credentials, Target};
use super::SinkError;

/// How the sink is set up.
pub struct Options {
    pub target: Target,
    pub credentials: Option<Credentials>,
    pub sensor: String,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    /// A batch is sealed at this many rows, this many bytes, or this old.
    pub batch_rows: u64,
    pub batch_bytes: usize,
    pub flush_every: Duration,
    /// Sealed batches kept in memory before they go to the spool.
    pub memory_bytes: usize,
    /// One request's limit: connecting, sending, and waiting for the answer.
    pub timeout: Duration,
    /// How long `close` waits for the last deliveries before leaving them to the spool.
    pub close_timeout: Duration,
    /// Told (once per change) when ClickHouse fails and when it is back.
    pub notify: Box<dyn Fn(&str) + Send + Sync>,
}

impl Options {
    /// Defaults for everything but where, who, and the spool.
    pub fn new(target: Target, sensor: String, spool_dir: PathBuf) -> Options {
        Options {
            target,
            credentials: None,
            sensor,
            spool_dir,
            spool_max_bytes: super::spool::DEFAULT_MAX_BYTES,
            batch_rows: 20_000,
            batch_bytes: 8 << 20,
            flush_every: Duration::from_secs(1),
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(30),
            notify: Box::new(|_| {}),
        }
    }
}

/// The sink's counts, for `--stats` and the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Rows ClickHouse acknowledged (this run's and earlier runs' spooled ones).
    pub sent: u64,
    /// Rows written to the spool by this run.
    pub spooled: u64,
    /// Rows lost because the spool was full or could not be written.
    pub dropped: u64,
    /// Batches and bytes in the spool now.
    pub spool_batches: usize,
    pub spool_bytes: u64,
    pub spool_dir: PathBuf,
    /// The last error ClickHouse or the spool gave, if any.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    spooled: AtomicU64,
    dropped: AtomicU64,
}

struct Batch {
    name: String,
    rows: Arc<Vec<u8>>,
    count: u64,
}

struct State {
    open: Vec<u8>,
    open_rows: u64,
    open_since: Option<Instant>,
    next_batch: u64,
    queue: VecDeque<Batch>,
    queued_bytes: usize,
    /// The batch from memory the sender is inserting now (the spool has its others).
    in_flight: Option<Batch>,
    closing: bool,
    /// `close` gave up waiting: the sender must touch nothing more.
    abandoned: bool,
    last_error: Option<String>,
}

/// Shared by the record path, the sender thread and `close`. Locks are taken state first,
/// then spool, and neither is held while the disk or the network works: a slow disk or
/// ClickHouse holds up only the thread that waits on it, never the record path's lock.
struct Shared {
    state: Mutex<State>,
    /// The spool's bookkeeping (which batches, in which order, how many bytes).
    spool: Mutex<Spool>,
    spool_dir: PathBuf,
    wake: Condvar,
    counters: Counters,
    origin: Origin,
    options: Options,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spool(&self) -> MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rows lost: counted, said, and kept as the last error.
    fn drop_rows(&self, state: &mut State, count: u64, message: String) {
        self.counters.dropped.fetch_add(count, Ordering::Relaxed);
        (self.options.notify)(&message);
        state.last_error = Some(message);
    }

    /// Take `batch` out of memory for the spool. Its place in the order is reserved now,
    /// under the state lock, so the sender never overtakes it; it is pushed to `out` for
    /// [`Shared::write_reserved`] once the lock is let go. A full spool drops it, counted.
    fn reserve(&self, state: &mut State, batch: Batch, out: &mut Vec<Batch>) {
        let reservation = self.spool().reserve(&batch.name, batch.rows.len() as u64);
        match reservation {
            Reservation::Granted => out.push(batch),
            Reservation::Kept => {}
            Reservation::Full => {
                let message = format!(
                    "spool {} is full ({} bytes): {} records dropped",
                    self.spool_dir.display(),
                    self.options.spool_max_bytes,
                    batch.count
                );
                self.drop_rows(state, batch.count, message);
            }
        }
    }

    /// Write batches [`Shared::reserve`] let through. Called with no lock held.
    fn write_reserved(&self, batches: Vec<Batch>) {
        if batches.is_empty() {
            return;
        }
        for batch in batches {
            let written = write_batch(&self.spool_dir, &batch.name, &batch.rows);
            let mut spool = self.spool();
            match written {
                Ok(()) => {
                    spool.commit(&batch.name);
                    self.counters
                        .spooled
                        .fetch_add(batch.count, Ordering::Relaxed);
                }
                Err(e) => {
                    spool.abort(&batch.name);
                    drop(spool);
                    let message = format!("{e}: {} records dropped", batch.count);
                    self.drop_rows(&mut self.lock(), batch.count, message);
                }
            }
        }
        // The sender may be waiting for one of them.
        self.wake.notify_all();
    }

    /// Seal the open batch: into the memory queue while it has room, else reserved in the
    /// spool (returned, to be written once the lock is let go).
    #[must_use]
    fn seal(&self, state: &mut State) -> Vec<Batch> {
        let mut to_write = Vec::new();
        if state.open_rows == 0 {
            return to_write;
        }
        let rows = std::mem::replace(
            &mut state.open,
            Vec::with_capacity(self.options.batch_bytes.min(1 << 20)),
        );
        let batch = Batch {
            name: Spool::name_of(&self.origin.run, state.next_batch),
            count: state.open_rows,
            rows: Arc::new(rows),
        };
        state.next_batch += 1;
        state.open_rows = 0;
        state.open_since = None;
        if state.queued_bytes + batch.rows.len() <= self.options.memory_bytes {
            state.queued_bytes += batch.rows.len();
            state.queue.push_back(batch);
            self.wake.notify_one();
        } else {
            self.reserve(state, batch, &mut to_write);
        }
        to_write
    }

    /// Everything in memory reserved for the spool: ClickHouse is failing, or the run is
    /// ending without it. Returns what to write once the lock is let go.
    #[must_use]
    fn take_all(&self, state: &mut State) -> Vec<Batch> {
        let mut to_write = self.seal(state);
        if let Some(batch) = state.in_flight.take() {
            self.reserve(state, batch, &mut to_write);
        }
        while let Some(batch) = state.queue.pop_front() {
            state.queued_bytes -= batch.rows.len();
            self.reserve(state, batch, &mut to_write);
        }
        to_write
    }
}

/// Records into a ClickHouse table.
pub struct ClickHouseSink {
    shared: Arc<Shared>,
    config: CensusConfig,
    seq: u64,
    sender: Option<JoinHandle<()>>,
    done: crossbeam_channel::Receiver<()>,
}

impl ClickHouseSink {
    /// Open the spool (what earlier runs left there is sent first) and start the sender.
    /// `config` gives each row its direction, as the census would.
    pub fn open(
        options: Options,
        config: CensusConfig,
        run: String,
    ) -> Result<ClickHouseSink, SinkError> {
        let spool = Spool::open(&options.spool_dir, options.spool_max_bytes)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                open: Vec::new(),
                open_rows: 0,
                open_since: None,
                next_batch: 0,
                queue: VecDeque::new(),
                queued_bytes: 0,
                in_flight: None,
                closing: false,
                abandoned: false,
                last_error: None,
            }),
            spool_dir: spool.dir().to_path_buf(),
            spool: Mutex::new(spool),
            wake: Condvar::new(),
            counters: Counters::default(),
            origin: Origin {
                sensor: options.sensor.clone(),
                run,
            },
            options,
        });
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let for_sender = Arc::clone(&shared);
        let sender = std::thread::Builder::new()
            .name("clickhouse".into())
            .spawn(move || {
                send_loop(&for_sender);
                let _ = done_tx.send(());
            })
            .map_err(|cause| SinkError::Spool {
                path: shared.options.spool_dir.clone(),
                cause,
            })?;
        Ok(ClickHouseSink {
            shared,
            config,
            seq: 0,
            sender: Some(sender),
            done,
        })
    }

    /// Add one record; `line` is its JSON (as `--events FILE` has it, without the newline).
    /// Only when the memory queue is full does the record path write a batch to the spool
    /// itself (with no lock held): ClickHouse has been slower than the records for a while.
    pub fn add(&mut self, record: &Record, line: &str) {
        let shared = &*self.shared;
        let to_write = {
            let mut state = shared.lock();
            write_row(
                &mut state.open,
                &shared.origin,
                self.seq,
                &self.config,
                record,
                line,
            );
            self.seq += 1;
            state.open_rows += 1;
            if state.open_since.is_none() {
                state.open_since = Some(Instant::now());
            }
            if state.open_rows >= shared.options.batch_rows
                || state.open.len() >= shared.options.batch_bytes
            {
                shared.seal(&mut state)
            } else {
                Vec::new()
            }
        };
        shared.write_reserved(to_write);
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        counts_of(&self.shared)
    }

    /// A handle that reads the counts while the sink is borrowed elsewhere (the status
    /// line, while the record callback holds the sink).
    pub fn counts_view(&self) -> CountsView {
        CountsView(Arc::clone(&self.shared))
    }

    /// Deliver what can be delivered before the closing deadline, leave the rest in the
    /// spool, and give the final counts.
    pub fn close(mut self) -> Counts {
        let to_write = {
            let mut state = self.shared.lock();
            state.closing = true;
            let to_write = self.shared.seal(&mut state);
            self.shared.wake.notify_all();
            to_write
        };
        self.shared.write_reserved(to_write);
        match self.done.recv_timeout(self.shared.options.close_timeout) {
            Ok(()) => {
                if let Some(sender) = self.sender.take() {
                    let _ = sender.join();
                }
            }
            Err(_) => {
                // The sender is stuck in a request: leave it, and keep what it holds.
                let to_write = {
                    let mut state = self.shared.lock();
                    state.abandoned = true;
                    self.shared.take_all(&mut state)
                };
                self.shared.write_reserved(to_write);
                (self.shared.options.notify)(&format!(
                    "ClickHouse did not take the last records within {:?}; they wait in the spool {}",
                    self.shared.options.close_timeout,
                    self.shared.spool_dir.display()
                ));
            }
        }
        counts_of(&self.shared)
    }
}

/// See [`ClickHouseSink::counts_view`].
pub struct CountsView(Arc<Shared>);

impl CountsView {
    pub fn counts(&self) -> Counts {
        counts_of(&self.0)
    }
}

fn counts_of(shared: &Shared) -> Counts {
    let last_error = shared.lock().last_error.clone();
    let (spool_batches, spool_bytes) = shared.spool().len();
    Counts {
        sent: shared.counters.sent.load(Ordering::Relaxed),
        spooled: shared.counters.spooled.load(Ordering::Relaxed),
        dropped: shared.counters.dropped.load(Ordering::Relaxed),
        spool_batches,
        spool_bytes,
        spool_dir: shared.spool_dir.clone(),
        last_error,
    }
}

/// Run the DDL (each statement `IF NOT EXISTS`) before the first insert; an error when the
/// server could not be reached or refused the credentials. A statement the server refuses (a user without the right to create, a
/// Distributed table made by hand) is said once and does not stop the inserts: only an
/// insert that fails sends rows to the spool.
fn create_table(client: &Client, options: &Options) -> Result<(), SinkError> {
    for ddl in schema::for_target(&options.target) {
        match client.execute(&ddl) {
            // Credentials refused: no insert will pass either; said once, as a failure.
            Err(e) if e.is_authentication() => return Err(e),
            Err(e @ SinkError::Server { .. }) => {
                let first_line = ddl.lines().next().unwrap_or("");
                (options.notify)(&format!("{first_line}: {e}"));
            }
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// Where the next batch comes from.
enum Next {
    Memory(Batch),
    Spooled(String),
}

/// The sender thread: create the table, then send the oldest batch, over and over; on a
/// failure spool what is in memory and wait before trying again (1 s, doubling to 30 s).
/// The state lock is let go for every request, file read and file write.
fn send_loop(shared: &Shared) {
    let options = &shared.options;
    let client = Client::new(
        &options.target,
        options.credentials.as_ref(),
        options.timeout,
    );
    let table = options.target.qualified();
    let mut table_ready = false;
    let mut failing = false;
    let mut backoff = Duration::from_secs(1);
    let mut state = shared.lock();
    loop {
        if state.abandoned {
            return;
        }
        // A quiet moment: the open batch goes out once it is old enough.
        if state
            .open_since
            .is_some_and(|t| t.elapsed() >= options.flush_every)
        {
            let to_write = shared.seal(&mut state);
            if !to_write.is_empty() {
                drop(state);
                shared.write_reserved(to_write);
                state = shared.lock();
                continue;
            }
        }
        let (spooled, being_written) = {
            let spool = shared.spool();
            let oldest = spool.oldest().map(str::to_string);
            let pending = oldest.as_deref().is_some_and(|n| spool.is_pending(n));
            (oldest, pending)
        };
        let take_memory = match (state.queue.front(), &spooled) {
            (Some(b), Some(s)) => b.name < *s,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let next = if take_memory {
            let batch = state.queue.pop_front().expect("front seen");
            state.queued_bytes -= batch.rows.len();
            state.in_flight = Some(Batch {
                name: batch.name.clone(),
                rows: Arc::clone(&batch.rows),
                count: batch.count,
            });
            Next::Memory(batch)
        } else if let Some(name) = spooled {
            if being_written {
                // Another thread is writing the oldest batch: wait for it, to keep the order.
                state = shared
                    .wake
                    .wait_timeout(state, Duration::from_millis(20))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            }
            Next::Spooled(name)
        } else if state.closing && state.open_rows == 0 {
            return;
        } else {
            let wait = if state.open_since.is_some() {
                options.flush_every / 4
            } else {
                options.flush_every
            };
            state = shared
                .wake
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        };
        drop(state);

        let (rows, count) = match &next {
            Next::Memory(b) => (Arc::clone(&b.rows), b.count),
            Next::Spooled(name) => match read_batch(&shared.spool_dir, name) {
                Ok(rows) => {
                    let count = rows_in(&rows);
                    (Arc::new(rows), count)
                }
                Err(e) => {
                    // A batch file gone or unreadable: say so, and go on without it.
                    (options.notify)(&e.to_string());
                    shared.spool().forget(name);
                    let _ = delete_batch(&shared.spool_dir, name);
                    state = shared.lock();
                    state.last_error = Some(e.to_string());
                    continue;
                }
            },
        };
        let mut result = Ok(());
        if !table_ready {
            result = create_table(&client, options);
            table_ready = result.is_ok();
        }
        if result.is_ok() {
            result = client.insert(&table, &rows);
        }
        let mut delete_error = None;
        if let (Ok(()), Next::Spooled(name)) = (&result, &next) {
            shared.spool().forget(name);
            delete_error = delete_batch(&shared.spool_dir, name).err();
        }

        state = shared.lock();
        if state.abandoned {
            return;
        }
        state.in_flight = None;
        if let Some(e) = delete_error {
            (options.notify)(&e.to_string());
            state.last_error = Some(e.to_string());
        }
        match result {
            Ok(()) => {
                shared.counters.sent.fetch_add(count, Ordering::Relaxed);
                if failing {
                    failing = false;
                    backoff = Duration::from_secs(1);
                    (options.notify)(&format!(
                        "ClickHouse at {} is back",
                        options.target.http_root()
                    ));
                }
            }
            Err(e) => {
                if !failing {
                    (options.notify)(&format!(
                        "{e}; records go to the spool {} until it is back",
                        shared.spool_dir.display()
                    ));
                }
                failing = true;
                state.last_error = Some(e.to_string());
                let mut to_write = Vec::new();
                if let Next::Memory(batch) = next {
                    shared.reserve(&mut state, batch, &mut to_write);
                }
                to_write.extend(shared.take_all(&mut state));
                drop(state);
                shared.write_reserved(to_write);
                state = shared.lock();
                if state.abandoned {
                    return;
                }
                if state.closing {
                    // Records added while that write was under way are still in memory;
                    // the run is ending, so they join the spool too.
                    let to_write = shared.take_all(&mut state);
                    drop(state);
                    shared.write_reserved(to_write);
                    return;
                }
                let until = Instant::now() + backoff;
                while !state.closing && !state.abandoned {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    state = shared
                        .wake
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    // Meanwhile what is sealed goes straight to the spool, in order.
                    let to_write = shared.take_all(&mut state);
                    if !to_write.is_empty() {
                        drop(state);
                        shared.write_reserved(to_write);
                        state = shared.lock();
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

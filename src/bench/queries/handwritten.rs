//! The query classes written by hand in differential dataflow over typed tuples: the baseline
//! the engine's SQL-compiled dataflows are held against. As a live query must, each keeps
//! every table's input open (b and c could change at any transaction, so their inputs advance
//! with a's) and delivers its output updates (collected at the end of the dataflow and taken
//! after each step); none shares arrangements with another query.

use super::workload::{Data, A, B, C};
use differential_dataflow::input::InputSession;
use differential_dataflow::operators::count::CountTotal;
use differential_dataflow::operators::threshold::ThresholdTotal;
use differential_dataflow::VecCollection;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::rc::Rc;
use std::time::{Duration, Instant};
use timely::communication::allocator::thread::Thread;
use timely::communication::Allocator;
use timely::dataflow::operators::probe::Handle as Probe;
use timely::worker::{Config as WorkerConfig, Worker};

/// One hand-written query over its own copy of the tables, on one worker.
pub struct Handwritten {
    worker: Worker,
    a: InputSession<u64, A, isize>,
    b: InputSession<u64, B, isize>,
    c: InputSession<u64, C, isize>,
    probe: Probe<u64>,
    /// Takes the output updates collected so far; returns how many there were.
    take_output: Box<dyn FnMut() -> usize>,
    time: u64,
}

/// Output updates of a hand-written query, collected as a subscriber's would be.
type Sink<D> = Rc<RefCell<Vec<(D, u64, isize)>>>;

/// Collects a query's output and probes it; returns what takes the collected updates.
fn deliver<D: differential_dataflow::Data>(
    c: VecCollection<'_, u64, D, isize>,
    probe: &Probe<u64>,
) -> Box<dyn FnMut() -> usize> {
    let sink: Sink<D> = Sink::default();
    let into = Rc::clone(&sink);
    c.inspect_batch(move |_, data| into.borrow_mut().extend_from_slice(data)).probe_with(probe);
    Box::new(move || std::mem::take(&mut *sink.borrow_mut()).len())
}

impl Handwritten {
    /// The class's query over `data`'s current rows; `None` for a class not written here.
    pub fn new(class: &str, data: &Data) -> Option<Handwritten> {
        let alloc = Allocator::Thread(Thread::default());
        let mut worker = Worker::new(WorkerConfig::default(), alloc, Some(Instant::now()));
        let mut a: InputSession<u64, A, isize> = InputSession::new();
        let mut b: InputSession<u64, B, isize> = InputSession::new();
        let mut c: InputSession<u64, C, isize> = InputSession::new();
        let probe = Probe::new();
        let p = probe.clone();
        let take_output = worker.dataflow::<u64, _, _>(|scope| {
            let a = a.to_collection(scope);
            let b = b.to_collection(scope);
            let c = c.to_collection(scope);
            let out = match class {
                "filter" => deliver(a.filter(|r| r.2 < 100).map(|r| (r.0, r.2)), &p),
                "join2" => {
                    let b = b.map(|r| (r.0, r.2)).arrange_by_key();
                    let a = a.map(|r| (r.3, (r.0, r.2))).arrange_by_key();
                    deliver(a.join_core(b, |_, &(id, v), &w| Some((id, v, w))), &p)
                }
                "join3" => {
                    let b = b.map(|r| (r.0, r.1)).arrange_by_key();
                    let c = c.map(|r| (r.0, r.1)).arrange_by_key();
                    let out = a
                        .map(|r| (r.3, (r.0, r.2)))
                        .arrange_by_key()
                        .join_core(b, |_, &(id, v), &c_id| Some((c_id, (id, v))))
                        .arrange_by_key()
                        .join_core(c, |_, &(id, v), &x| Some((id, v, x)));
                    deliver(out, &p)
                }
                "outer_join" => {
                    let by_b = a.clone().map(|r| (r.3, (r.0, r.2))).arrange_by_key();
                    let ids = b.map(|r| (r.0, ()));
                    let matched = ids
                        .clone()
                        .arrange_by_key()
                        .join_core(by_b, |&b_id, &(), &(id, v)| Some((b_id, Some((id, v)))));
                    let unmatched = ids.antijoin(a.map(|r| r.3).distinct()).map(|(b_id, ())| (b_id, None));
                    deliver(matched.concat(unmatched), &p)
                }
                "group_sum" => deliver(a.explode(|r| Some((r.1, r.2 as isize))).count_total(), &p),
                "count" => deliver(a.filter(|r| r.2 < 500).map(|_| ()).count_total(), &p),
                "distinct" => deliver(a.filter(|r| r.2 < 10).map(|r| r.1).distinct_total(), &p),
                "exists" => {
                    let keys = a.filter(|r| r.2 < 10).map(|r| r.3).distinct_total();
                    deliver(b.map(|r| (r.0, r.2)).semijoin(keys), &p)
                }
                "top10" => {
                    // Hierarchical, as a careful hand-written top-k would be: buckets by id bits.
                    let mut top = a.map(|r| (Reverse(r.2), r.0));
                    for bits in [16u32, 12, 8, 4, 0] {
                        top = top
                            .map(move |x| (x.1 & ((1u64 << bits) - 1), x))
                            .reduce(|_, vals, out: &mut Vec<((Reverse<i64>, u64), isize)>| {
                                for (v, _) in vals.iter().take(10) {
                                    out.push((**v, 1));
                                }
                            })
                            .map(|(_, x)| x);
                    }
                    deliver(top, &p)
                }
                "pipeline" => {
                    let b = b.map(|r| (r.0, r.1 % 100)).arrange_by_key();
                    let out = a
                        .filter(|r| r.2 < 500)
                        .map(|r| (r.3, r.2))
                        .arrange_by_key()
                        .join_core(b, |_, &v, &g| Some((g, v)))
                        .explode(|(g, v)| Some((g, v as isize)))
                        .count_total();
                    deliver(out, &p)
                }
                _ => return None,
            };
            Some(out)
        })?;
        for r in &data.a {
            a.insert(*r);
        }
        for i in 0..data.n {
            b.insert(data.b(i));
            c.insert(data.c(i));
        }
        let mut h = Handwritten { worker, a, b, c, probe, take_output, time: 0 };
        h.advance();
        h.flush_and_step();
        Some(h)
    }

    /// Moves every input to the next timestamp.
    fn advance(&mut self) {
        self.time += 1;
        self.a.advance_to(self.time);
        self.b.advance_to(self.time);
        self.c.advance_to(self.time);
    }

    /// Sends what the inputs hold and steps until the output is complete; takes the output.
    fn flush_and_step(&mut self) {
        self.a.flush();
        self.b.flush();
        self.c.flush();
        let (t, probe) = (self.time, self.probe.clone());
        self.worker.step_while(|| probe.less_than(&t));
        (self.take_output)();
    }

    /// Time to apply `size` random updates as one transaction (drawing them is not timed).
    pub fn timed_update(&mut self, data: &mut Data, size: usize) -> Duration {
        let updates = data.updates(size);
        let t = Instant::now();
        self.apply_all([updates.as_slice()]);
        t.elapsed()
    }

    /// Applies transactions in one step, each at its own timestamp (as the engine does).
    pub fn apply_all<'u>(&mut self, txs: impl IntoIterator<Item = &'u [(A, A)]>) {
        for tx in txs {
            for (o, n) in tx {
                self.a.remove(*o);
                self.a.insert(*n);
            }
            self.advance();
        }
        self.flush_and_step();
    }
}

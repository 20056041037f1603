//! The study's runs as a dependency graph, and a scheduler that trains independent runs at once.
//!
//! A student waits for its teachers; a pre-trained model's later runs wait for its generation-0
//! run, which makes the pre-training they start from. Every job trains in a worker pool of its
//! own, so jobs do not steal each other's threads; results do not depend on how many jobs or
//! threads computed them (the CPU kernels' sums do not depend on the thread count).

use std::sync::{Condvar, Mutex, PoisonError};

use crate::plan::{Plan, Teaching};

/// How many runs train at once and with how many threads each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jobs {
    /// Runs trained at once.
    pub jobs: usize,
    /// Worker threads of each run.
    pub threads_per_job: usize,
}

impl Jobs {
    /// `requested` jobs (0 = one per thread of the budget) sharing `threads` worker threads, so
    /// jobs × threads per job stays within the budget.
    pub fn within(requested: usize, threads: usize) -> Self {
        let threads = threads.max(1);
        let jobs = if requested == 0 { threads } else { requested };
        Self { jobs, threads_per_job: (threads / jobs).max(1) }
    }
}

/// For every run of `plan`, the runs that must finish before it starts (plan indices).
pub fn dependencies(plan: &Plan) -> Vec<Vec<usize>> {
    plan.runs
        .iter()
        .map(|run| {
            let mut needs: Vec<usize> = match &run.teaching {
                Teaching::Labels | Teaching::Truth | Teaching::CrossFit { .. } => Vec::new(),
                Teaching::PseudoLabels { teachers, .. } => teachers.clone(),
            };
            if run.generation > 0 && run.network.pretrain.is_some() {
                // The pre-training this run may start from is made by its model's generation-0 run.
                let first = plan.runs.iter().position(|r| r.generation == 0 && r.repeat == run.repeat && r.network == run.network);
                needs.extend(first);
            }
            needs.sort_unstable();
            needs.dedup();
            needs
        })
        .collect()
}

/// The wall time of runs taking `seconds` each with `jobs` at once, when each starts in plan
/// order as soon as a job is free and every run it `needs` has finished (how [`run_all`] orders
/// them, with known durations).
pub fn makespan(seconds: &[f64], needs: &[Vec<usize>], jobs: usize) -> f64 {
    let mut free = vec![0.0f64; jobs.max(1)];
    let mut ends = vec![0.0f64; seconds.len()];
    for (i, &s) in seconds.iter().enumerate() {
        let ready = needs[i].iter().map(|&n| ends[n]).fold(0.0, f64::max);
        let (job, at) = free.iter().copied().enumerate().fold((0, f64::INFINITY), |a, (j, t)| if t < a.1 { (j, t) } else { a });
        ends[i] = at.max(ready) + s;
        free[job] = ends[i];
    }
    ends.into_iter().fold(0.0, f64::max)
}

/// The state of the runs `work` is asked to do, shared by the jobs.
struct Board {
    /// Runs to do, in plan order; taken from the front as their dependencies finish.
    waiting: Vec<usize>,
    /// Finished runs (including those given as finished).
    finished: Vec<bool>,
    /// Runs in progress.
    running: usize,
    /// The first failure; no run starts after it.
    failed: bool,
}

/// Does `work` for every run in `todo` (plan indices, in plan order), with at most `jobs.jobs` at
/// once and each in a worker pool of `jobs.threads_per_job` threads; a run starts only when every
/// run it `needs` is finished or `done` already. Returns the results in the order of `todo`, or
/// the first error (runs already started finish first; no new run starts).
pub fn run_all<T: Send, E: Send>(
    todo: &[usize],
    needs: &[Vec<usize>],
    done: &[bool],
    jobs: Jobs,
    work: impl Fn(usize) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let board = Mutex::new(Board { waiting: todo.to_vec(), finished: done.to_vec(), running: 0, failed: false });
    let changed = Condvar::new();
    let results: Mutex<Vec<(usize, Result<T, E>)>> = Mutex::new(Vec::with_capacity(todo.len()));
    let job = || {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.threads_per_job).build();
        loop {
            let next = {
                let mut b = board.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if b.failed || b.waiting.is_empty() {
                        break None;
                    }
                    let ready = b.waiting.iter().position(|&i| needs[i].iter().all(|&n| b.finished[n]));
                    match ready {
                        Some(k) => {
                            b.running += 1;
                            break Some(b.waiting.remove(k));
                        }
                        // Nothing can start and nothing runs that could unblock it: the
                        // dependencies lie outside `todo` (another shard) and will not come.
                        None if b.running == 0 => break None,
                        None => b = changed.wait(b).unwrap_or_else(PoisonError::into_inner),
                    }
                }
            };
            let Some(i) = next else { break };
            // Marks the run finished (or the study failed) however `work` ends, a panic included,
            // so the other jobs never wait for it forever.
            struct Finish<'a> {
                board: &'a Mutex<Board>,
                changed: &'a Condvar,
                run: usize,
                ok: bool,
            }
            impl Drop for Finish<'_> {
                fn drop(&mut self) {
                    let mut b = self.board.lock().unwrap_or_else(PoisonError::into_inner);
                    b.running -= 1;
                    b.finished[self.run] = self.ok;
                    b.failed |= !self.ok;
                    self.changed.notify_all();
                }
            }
            let mut finish = Finish { board: &board, changed: &changed, run: i, ok: false };
            let result = match &pool {
                Ok(pool) => pool.install(|| work(i)),
                Err(_) => work(i),
            };
            finish.ok = result.is_ok();
            results.lock().unwrap_or_else(PoisonError::into_inner).push((i, result));
            drop(finish);
        }
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (1..jobs.jobs.min(todo.len()).max(1)).map(|_| scope.spawn(job)).collect();
        job();
        for worker in workers {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let mut results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
    // Plan order, so the first error reported is the earliest run's, whatever finished first.
    results.sort_by_key(|(i, _)| *i);
    let mut out = Vec::with_capacity(results.len());
    for (_, result) in results {
        out.push(result?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn a_run_starts_only_after_its_dependencies_and_results_keep_plan_order() {
        // 0, 1 independent; 2 needs 0; 3 needs 1 and 2.
        let needs = vec![vec![], vec![], vec![0], vec![1, 2]];
        let started = Mutex::new(Vec::new());
        let ended = Mutex::new(Vec::new());
        let out = run_all(&[0, 1, 2, 3], &needs, &[false; 4], Jobs { jobs: 3, threads_per_job: 1 }, |i| {
            started.lock().unwrap().push((i, ended.lock().unwrap().clone()));
            std::thread::sleep(std::time::Duration::from_millis(20 * (4 - i as u64)));
            ended.lock().unwrap().push(i);
            Ok::<usize, ()>(i * 10)
        })
        .unwrap();
        assert_eq!(out, [0, 10, 20, 30]);
        for (run, before) in started.into_inner().unwrap() {
            assert!(needs[run].iter().all(|n| before.contains(n)), "run {run} started before its dependencies ({before:?})");
        }
    }

    #[test]
    fn independent_runs_overlap_and_a_failure_stops_new_starts() {
        let active = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let out = run_all(&[0, 1, 2, 3], &[vec![], vec![], vec![], vec![]], &[false; 4], Jobs { jobs: 2, threads_per_job: 1 }, |i| {
            let now = active.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(30));
            active.fetch_sub(1, Ordering::SeqCst);
            Ok::<usize, ()>(i)
        });
        assert_eq!(out, Ok(vec![0, 1, 2, 3]));
        assert_eq!(most.load(Ordering::SeqCst), 2, "two jobs should run two runs at once");

        let tried = Mutex::new(Vec::new());
        let failed = run_all(&[0, 1, 2], &[vec![], vec![0], vec![1]], &[false; 3], Jobs { jobs: 2, threads_per_job: 1 }, |i| {
            tried.lock().unwrap().push(i);
            if i == 1 { Err(format!("run {i} failed")) } else { Ok(i) }
        });
        assert_eq!(failed, Err("run 1 failed".to_string()));
        assert_eq!(tried.into_inner().unwrap(), [0, 1], "no run starts after a failure");
    }

    #[test]
    fn the_estimated_wall_time_overlaps_independent_runs_only() {
        // Two independent 10 s runs, then one that needs both.
        let needs = vec![vec![], vec![], vec![0, 1]];
        assert_eq!(makespan(&[10.0, 10.0, 5.0], &needs, 1), 25.0);
        assert_eq!(makespan(&[10.0, 10.0, 5.0], &needs, 2), 15.0);
        assert_eq!(makespan(&[10.0, 10.0, 5.0], &needs, 8), 15.0);
        // A chain gains nothing from more jobs.
        assert_eq!(makespan(&[1.0, 2.0, 3.0], &[vec![], vec![0], vec![1]], 3), 6.0);
    }

    #[test]
    fn runs_given_as_done_satisfy_their_students_and_jobs_share_the_threads() {
        let out = run_all(&[1], &[vec![], vec![0]], &[true, false], Jobs { jobs: 4, threads_per_job: 1 }, Ok::<usize, ()>).unwrap();
        assert_eq!(out, [1]);
        assert_eq!(Jobs::within(0, 2), Jobs { jobs: 2, threads_per_job: 1 });
        assert_eq!(Jobs::within(1, 2), Jobs { jobs: 1, threads_per_job: 2 });
        assert_eq!(Jobs::within(3, 16), Jobs { jobs: 3, threads_per_job: 5 });
        assert_eq!(Jobs::within(4, 2), Jobs { jobs: 4, threads_per_job: 1 });
    }
}

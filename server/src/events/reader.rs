//! The consuming thread of one map: opens the kernel reader, sleeps in poll(2) until records
//! or a stop request arrive, and hands records to the hub's fan-out.
//!
//! A thread of its own, not a tokio task: libbpf calls back synchronously for every record,
//! and a busy ring must not hold up the gRPC workers. It lives exactly as long as the map
//! has subscribers: the last one leaving writes the hub's eventfd and the thread returns,
//! closing its ring, perf events, epoll fd and map fd on the way out.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{Events, Hub, Ready};
use crate::kernel::{EventReader, EventSink, Map, RawEvent};

/// Pages of perf buffer per CPU (256 KiB with 4 KiB pages): room for bursts while the
/// daemon is scheduled out.
const PERF_PAGES: usize = 64;
/// Most ring-buffer records handed out per consume call, so that a stop request is seen
/// even while a program keeps the ring busy.
const MAX_PER_CONSUME: usize = 16 * 1024;

/// Starts the consumer of `hub`'s map. `prev` is the previous consumer of the same map,
/// still stopping: the new one waits for it, so that one ring never has two consumers and
/// a perf array's old buffers are out of the map before the new ones go in.
pub(super) fn spawn(
    events: Arc<Events>,
    hub: Arc<Hub>,
    map: Arc<Map>,
    prev: Option<JoinHandle<()>>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("events-{}", map.id))
        .spawn(move || {
            if let Some(prev) = prev {
                let _ = prev.join();
            }
            run(&hub, &map);
            events.forget(&hub);
        })
}

fn run(hub: &Arc<Hub>, map: &Map) {
    let sink_hub = hub.clone();
    let sink: EventSink = Box::new(move |ev: RawEvent<'_>| sink_hub.fan_out(ev));
    let mut reader = match EventReader::open(map, PERF_PAGES, sink) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(map = map.id, error = %e, "cannot read events");
            hub.set_ready(Ready::Failed(e));
            return;
        }
    };
    hub.set_ready(Ready::Running);
    tracing::debug!(map = map.id, "event consumer started");
    loop {
        if hub.is_stopping() {
            break;
        }
        let (data, wake) = {
            let mut fds = [
                PollFd::new(reader.epoll_fd(), PollFlags::POLLIN),
                PollFd::new(hub.wake.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!(map = map.id, error = %e, "poll on the event buffers failed");
                    hub.set_ready(Ready::Failed(crate::kernel::KernelError {
                        op: "poll",
                        errno: e as i32,
                    }));
                    break;
                }
            }
            let ready = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        if wake {
            let _ = hub.wake.read();
        }
        if hub.is_stopping() {
            break;
        }
        if data {
            if let Err(e) = reader.consume(MAX_PER_CONSUME) {
                tracing::warn!(map = map.id, error = %e, "consuming events failed");
                hub.set_ready(Ready::Failed(e));
                break;
            }
        }
    }
    tracing::debug!(map = reader.map_id(), "event consumer stopped");
}

//! Waiting for a condition under a deadline, in place of a fixed sleep followed by an
//! assertion: on a busy machine the condition comes late and the wait goes on; on a quiet one
//! the wait ends as soon as it holds. Included with `#[path = "support/wait.rs"]`.
#![allow(dead_code)]

use std::time::Duration;

/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(20);

/// Checks `condition` until it holds (true) or `deadline` has passed (false, after one last
/// check at the deadline).
pub fn wait_until(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + deadline;
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// [`wait_until`] for async conditions. It keeps tokio's clock, so a test with paused time
/// advances instead of waiting.
pub async fn wait_until_async(
    deadline: Duration,
    mut condition: impl AsyncFnMut() -> bool,
) -> bool {
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// For "nothing happens" checks: whether `condition` holds at every check for the whole
/// `window`; false as soon as it fails. (A condition met late still passes: such a check
/// can only watch for as long as it is given.)
pub async fn stays_async(window: Duration, mut condition: impl AsyncFnMut() -> bool) -> bool {
    !wait_until_async(window, async || !condition().await).await
}

/// [`stays_async`] without a runtime.
pub fn stays(window: Duration, mut condition: impl FnMut() -> bool) -> bool {
    !wait_until(window, || !condition())
}

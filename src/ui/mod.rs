//! The cockpit: an interactive terminal UI over a run's events (ratatui + crossterm).
//!
//! It subscribes to the engine's events and sends operator commands; it never reaches
//! into the engine. One loop feeds it: terminal input, engine events (batched per frame)
//! and a one-second tick while a clock is on screen. It draws only when something
//! changed, and restores the terminal on every exit path (panics included: ratatui's
//! panic hook).

pub mod app;
pub mod config;
pub mod keys;
pub mod state;
pub mod theme;
pub mod view;

use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};

use crate::events::{Command, Envelope};
use app::App;

/// How the cockpit starts.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--theme NAME`.
    pub theme: Option<String>,
    /// Hide and refuse every key that changes the release.
    pub read_only: bool,
    /// Where the run delivers, for the header.
    pub target: String,
    /// Stages whose rollback or abort asks for the service name.
    pub protected: Vec<String>,
    /// The journal, for the history view.
    pub journal: Option<std::path::PathBuf>,
    /// Mouse support: the wheel scrolls, a click selects (off by default, so the terminal
    /// keeps its own text selection).
    pub mouse: bool,
    /// Shown when the cockpit opens (attached to a run nobody drives, say).
    pub notice: Option<String>,
    /// Who holds the run's leases, for the header.
    pub lease: Option<String>,
    /// A line under the header for the whole run (the demo says what to try).
    pub banner: Option<String>,
    /// The earlier events are of a run that was interrupted (resumed now, or nobody drives
    /// it): what was in flight then shows as pending.
    pub interrupted: bool,
}

/// Reads the history overlay's rows from the journal.
pub fn history(journal: &std::path::Path, app: &App) -> Result<app::History, String> {
    let store = crate::store::Store::open(journal).map_err(|e| e.to_string())?;
    let runs = store.runs(20).map_err(|e| e.to_string())?;
    let stage = app
        .run
        .current_stage()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let evaluations = store
        .evaluations(&app.run.service, &stage, 20)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|e| {
            let values = e
                .sli_values
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k} {v}"),
                    None => format!("{k} no data"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let mark = if e.invalid { " (invalidated)" } else { "" };
            (e.result, format!("{values}{mark}"))
        })
        .collect();
    Ok(app::History {
        runs,
        evaluations,
        stage,
    })
}

static ACTIVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True while the cockpit owns the terminal (the stderr log stays quiet then).
pub fn active() -> bool {
    ACTIVE.load(std::sync::atomic::Ordering::Relaxed)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Who the cockpit's commands come from in the journal.
fn operator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .map(|u| format!("{u} (cockpit)"))
        .unwrap_or_else(|| "cockpit".into())
}

/// Restores the terminal however the cockpit ends (errors, panics unwinding through it):
/// mouse capture off, raw mode and the alternate screen left, stderr logging back on.
struct TerminalGuard {
    mouse: bool,
}

impl TerminalGuard {
    fn enter(mouse: bool) -> std::io::Result<(Self, ratatui::DefaultTerminal)> {
        let terminal = ratatui::init();
        ACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
        let guard = TerminalGuard { mouse };
        if mouse {
            crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture)?;
        }
        Ok((guard, terminal))
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal(self.mouse);
    }
}

/// Leaves the cockpit's terminal state (also from a signal handler's last resort).
pub fn restore_terminal(mouse: bool) {
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
    ACTIVE.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// Events folded per frame at most, so a flood cannot starve the screen.
const BATCH: usize = 4_096;

/// How the cockpit ended.
pub struct Ended {
    /// The run had ended when the operator left.
    pub run_ended: bool,
    /// The cockpit's own event stream, with whatever it had not read yet, for a headless
    /// printer to carry on from.
    pub events: broadcast::Receiver<Envelope>,
}

/// Runs the cockpit until the operator leaves (or SIGTERM). `earlier` are events that
/// happened before it started (a resumed or attached run's journal): folded in first,
/// without toasts.
pub async fn run(
    mut events: broadcast::Receiver<Envelope>,
    commands: mpsc::UnboundedSender<Command>,
    options: Options,
    earlier: &[Envelope],
) -> std::io::Result<Ended> {
    let mut warnings = Vec::new();
    let settings = config::load(config::path().as_deref()).unwrap_or_else(|e| {
        warnings.push(format!("{e}; using the defaults"));
        config::Config::default()
    });
    let keymap = keys::Keymap::new(&settings.keys).unwrap_or_else(|e| {
        warnings.push(format!("{e}; using the default keys"));
        keys::Keymap::default()
    });
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let chosen = options.theme.as_deref().or(settings.theme.as_deref());
    let (theme, warning) = theme::choose(chosen, no_color);
    warnings.extend(warning);
    let mouse = options.mouse || settings.mouse;
    let mut app = App::new(
        theme,
        options.target.clone(),
        options.read_only,
        options.protected.clone(),
    );
    app.keymap = keymap;
    app.replay(earlier, options.interrupted);
    app.run.lease = options.lease.clone();
    app.banner = options.banner.clone();
    app.layout = settings.layout.clone();
    let frame = settings.frame_interval();
    app.now_ms = now_ms();
    warnings.extend(options.notice.clone());
    if !warnings.is_empty() {
        app.toast(warnings.join("; "), true);
    }
    let who = operator();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let (guard, mut terminal) = TerminalGuard::enter(mouse)?;
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut leaving = false;
    let mut dirty = true;
    let mut events_open = true;
    let mut last_draw = tokio::time::Instant::now() - frame;
    loop {
        if dirty && last_draw.elapsed() >= frame {
            terminal.draw(|f| view::draw(f, &app))?;
            dirty = false;
            last_draw = tokio::time::Instant::now();
        }
        let next_frame = last_draw + frame;
        tokio::select! {
            // A frame owed but held back by the rate cap.
            _ = tokio::time::sleep_until(next_frame), if dirty => {}
            key = input.next() => match key {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => {
                    dirty = true;
                    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
                    let action = app.keymap.action(&k);
                    if ctrl && k.code == KeyCode::Char('c') {
                        app.quit = true;
                    } else if action == Some(keys::Action::Suspend) {
                        restore_terminal(mouse);
                        // SAFETY: raising a signal for this process has no memory effects.
                        unsafe {
                            libc::raise(libc::SIGTSTP);
                        }
                        // Back from `fg`.
                        terminal = ratatui::init();
                        ACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
                        if mouse {
                            crossterm::execute!(
                                std::io::stdout(),
                                crossterm::event::EnableMouseCapture
                            )?;
                        }
                        terminal.clear()?;
                    } else if let Some(kind) = app.key(k) {
                        let _ = commands.send(Command::new(kind, who.clone()));
                    }
                    if !app.quit && action != Some(keys::Action::Back) {
                        // Only a second quit in a row leaves a live run.
                        leaving = false;
                    }
                    if app.overlay == Some(app::Overlay::AppLog) {
                        tui_logger::move_events();
                    }
                    if std::mem::take(&mut app.history_request) {
                        match options.journal.as_deref().map(|j| history(j, &app)) {
                            Some(Ok(h)) => {
                                app.history = Some(h);
                                app.overlay = Some(app::Overlay::History);
                            }
                            Some(Err(e)) => app.toast(format!("history: {e}"), true),
                            None => app.toast("history: no journal".into(), true),
                        }
                    }
                    if let Some(name) = app.theme_request.take() {
                        match theme::load(&name, theme::user_dir().as_ref()) {
                            Ok(t) => {
                                app.theme = t;
                                app.toast(format!("theme {name}"), false);
                            }
                            Err(e) => app.toast(e, true),
                        }
                    }
                }
                Some(Ok(TermEvent::Resize(..))) => dirty = true,
                Some(Ok(TermEvent::Mouse(m))) => {
                    use crossterm::event::MouseEventKind;
                    let key = |c| crossterm::event::KeyEvent::new(c, KeyModifiers::NONE);
                    let size = terminal.size()?;
                    let pane = view::pane_at(&app, size.width, size.height, m.column, m.row);
                    match m.kind {
                        MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                            if let Some(p) = pane {
                                app.focus = p;
                            }
                            let up = m.kind == MouseEventKind::ScrollUp;
                            app.key(key(if up { KeyCode::Up } else { KeyCode::Down }));
                            dirty = true;
                        }
                        MouseEventKind::Down(_) => {
                            if let Some(p) = pane {
                                app.focus = p;
                                dirty = true;
                            }
                        }
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            event = events.recv(), if events_open => {
                let mut next = Some(event);
                let mut folded = 0;
                // Everything already waiting (up to a batch) goes into the same frame.
                while let Some(event) = next.take() {
                    match event {
                        Ok(env) => app.apply(&env),
                        Err(broadcast::error::RecvError::Lagged(n)) => app.toast(
                            format!("{n} events came too fast to show; the journal has them"),
                            true,
                        ),
                        Err(broadcast::error::RecvError::Closed) => events_open = false,
                    }
                    folded += 1;
                    if folded < BATCH && events_open {
                        next = match events.try_recv() {
                            Ok(env) => Some(Ok(env)),
                            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                Some(Err(broadcast::error::RecvError::Lagged(n)))
                            }
                            Err(_) => None,
                        };
                    }
                }
                dirty = true;
            },
            _ = tick.tick() => {
                // The header's clock moves only while the run goes on.
                let expired = app.tick(now_ms());
                tui_logger::move_events();
                dirty |= expired || !app.run.ended() || app.overlay == Some(app::Overlay::AppLog);
            }
            // SIGTERM: leave now; the driver's own handler aborts the run.
            _ = term.recv() => break,
        }
        if app.quit {
            if app.run.ended() || leaving {
                break;
            }
            // Leaving a live run: it goes on without the cockpit, so say so once.
            leaving = true;
            app.quit = false;
            let abort = if app.read_only {
                String::new()
            } else {
                ", x aborts".to_owned()
            };
            app.toast(
                format!("the run goes on without the cockpit: q again leaves it running{abort}"),
                false,
            );
            dirty = true;
        }
    }
    drop(guard);
    Ok(Ended {
        run_ended: app.run.ended(),
        events,
    })
}

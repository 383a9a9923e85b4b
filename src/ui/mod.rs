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

/// Runs the cockpit until the operator leaves. Returns true when the run had ended then.
pub async fn run(
    mut events: broadcast::Receiver<Envelope>,
    commands: mpsc::UnboundedSender<Command>,
    options: Options,
) -> std::io::Result<bool> {
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
    app.now_ms = now_ms();
    app.keymap = keymap;
    if !warnings.is_empty() {
        app.toast(warnings.join("; "), true);
    }
    let who = operator();
    let mut terminal = ratatui::init();
    ACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
    if mouse {
        crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture)?;
    }
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut leaving = false;
    let mut dirty = true;
    let mut events_open = true;
    loop {
        if dirty {
            terminal.draw(|f| view::draw(f, &app))?;
            dirty = false;
        }
        tokio::select! {
            key = input.next() => match key {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => {
                    dirty = true;
                    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
                    if ctrl && k.code == KeyCode::Char('c') {
                        app.quit = true;
                    } else if app.keymap.action(&k) == Some(keys::Action::Suspend) {
                        ratatui::restore();
                        // SAFETY: raising a signal for this process has no memory effects.
                        unsafe {
                            libc::raise(libc::SIGTSTP);
                        }
                        terminal = ratatui::init();
                        terminal.clear()?;
                    } else if let Some(kind) = app.key(k) {
                        let _ = commands.send(Command::new(kind, who.clone()));
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
                    let pane = view::pane_at(size.width, size.height, app.focus, m.column, m.row);
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
            event = events.recv(), if events_open => match event {
                Ok(env) => {
                    app.apply(&env);
                    // Everything already waiting goes into the same frame.
                    while let Ok(env) = events.try_recv() {
                        app.apply(&env);
                    }
                    dirty = true;
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    app.toast(format!("{n} events were too fast to show; the journal has them"), true);
                    dirty = true;
                }
                Err(broadcast::error::RecvError::Closed) => events_open = false,
            },
            _ = tick.tick() => {
                // The header's clock moves only while the run goes on.
                let expired = app.tick(now_ms());
                tui_logger::move_events();
                dirty = expired || !app.run.ended() || app.overlay == Some(app::Overlay::AppLog);
            }
            _ = term.recv() => app.quit = true,
        }
        if app.quit {
            if app.run.ended() || leaving {
                break;
            }
            // Leaving a live run: it goes on without the cockpit, so say so once.
            leaving = true;
            app.quit = false;
            app.toast(
                "the run goes on without the cockpit: q again leaves it running, x aborts".into(),
                false,
            );
            dirty = true;
        }
    }
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
    ACTIVE.store(false, std::sync::atomic::Ordering::Relaxed);
    Ok(app.run.ended())
}

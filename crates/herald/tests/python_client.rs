//! Runs the Python client's test suite (`clients/python/tests`) against this
//! build of the broker, so that `cargo test --workspace --release` covers
//! the Python client too.
//!
//! A virtual environment is kept under the cargo target directory
//! (`<target>/python-client-venv`) and made once with `python3 -m venv`,
//! then given pytest and the package's build backend (hatchling) from PyPI.
//! Every run installs `clients/python` into it afresh (offline: no build
//! isolation, no dependencies, since the package has none) and runs
//! `python -m pytest clients/python/tests -q` with `HERALD_BIN` set to the
//! binary cargo built. The version-2 tests are deselected by the package's
//! pytest configuration.
//!
//! Without python3, venv or pip the test says so and passes, unless
//! `CI=true`: CI must run the Python suite, so there it fails.

mod common;
use common::{clear_herald_env, in_ci};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest the pytest run may take (it normally takes well under a minute).
const PYTEST_TIMEOUT: Duration = Duration::from_secs(300);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/herald is two levels below the repository root")
        .to_path_buf()
}

/// The cargo target directory: the binary is `<target>/<profile>/herald`.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_herald"))
        .ancestors()
        .nth(2)
        .expect("the binary is two levels below the target directory")
        .to_path_buf()
}

/// Skips (prints why, passes) outside CI; fails in CI.
fn unavailable(why: &str) {
    if in_ci() {
        panic!("the Python client's tests cannot run in CI: {why}");
    }
    eprintln!("python_client: skipped, {why} (set CI=true to make this a failure)");
}

fn run(cmd: &mut Command) -> Result<Output, String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{shown} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The venv's python, with pytest and hatchling: reused if it works, made
/// (again) otherwise.
fn venv_python() -> Result<PathBuf, String> {
    let venv = target_dir().join("python-client-venv");
    let python = venv.join("bin").join("python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import pytest, hatchling"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return Ok(python);
    }
    // A half-made venv (an interrupted earlier run) is made again.
    let _ = std::fs::remove_dir_all(&venv);
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
        .map_err(|e| format!("`python3 -m venv` does not work here: {e}"))?;
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "pytest>=7",
        "hatchling>=1.18",
    ]))
    .map_err(|e| format!("cannot install pytest and hatchling into the venv: {e}"))?;
    Ok(python)
}

#[test]
fn python_client_test_suite_passes() {
    if Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        return unavailable("python3 is not installed");
    }
    let python = match venv_python() {
        Ok(python) => python,
        Err(why) => return unavailable(&why),
    };
    let root = repo_root();
    if let Err(e) = run(Command::new(&python)
        .current_dir(&root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-build-isolation",
            "--no-deps",
            "--force-reinstall",
            "./clients/python",
        ]))
    {
        panic!("cannot install clients/python: {e}");
    }

    let started = Instant::now();
    let mut pytest = Command::new(&python);
    // The Python tests start `herald serve` themselves: no `HERALD_*`
    // setting of this environment may reach it, only the binary to run.
    clear_herald_env(&mut pytest);
    let mut child = pytest
        .current_dir(&root)
        .args([
            "-m",
            "pytest",
            "clients/python/tests",
            "-q",
            "-p",
            "no:cacheprovider",
        ])
        .env("HERALD_BIN", env!("CARGO_BIN_EXE_herald"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pytest");
    // Read both pipes on threads so a chatty run cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for pytest") {
            break status;
        }
        if started.elapsed() > PYTEST_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "pytest ran longer than {PYTEST_TIMEOUT:?}:\n{}{}",
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    assert!(
        status.success(),
        "the Python client's tests failed ({status}):\n{out}{err}"
    );
    // The summary line, so `cargo test -- --nocapture` shows the count.
    eprintln!(
        "python_client: {} in {:.1} s",
        out.lines().last().unwrap_or("").trim(),
        started.elapsed().as_secs_f64()
    );
}

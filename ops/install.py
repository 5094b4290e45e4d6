"""Install what the local stack needs and is missing: PostgreSQL (Debian), Kafka + Debezium jars
(Maven Central, pinned in ops/jvm/pom.xml), dynalite (npm, pinned in ops/dynalite/) and Toxiproxy
(the Go module proxy, pinned below).

Every download runs with a time limit and a registry that cannot serve an artifact becomes a
StackError that says what failed and what to try, never a hang.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from bridge.errors import StackError

OPS_DIR = Path(__file__).resolve().parent
JVM_POM = OPS_DIR / "jvm" / "pom.xml"
AVRO_CONVERTER_POM = OPS_DIR / "jvm" / "avro-converter" / "pom.xml"
# The schema registry's runnable distribution (group, artifact, version, classifier, type). Apicurio 3.0.x
# is the newest that runs on Java 17 (3.3 needs 21). Its parent POM is not on Maven Central, so Maven's
# unpack goal cannot read its descriptor: dependency:get of the 2.8 plugin, which does not read it when not
# transitive, fetches the file (3.x reads it and fails), and we unpack it.
APICURIO_REGISTRY = ("io.apicurio", "apicurio-registry-app", "3.0.9", "all", "tar.gz")
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:2.8"
DYNALITE_DIR = OPS_DIR / "dynalite"
MIN_PG_MAJOR = 15
MIN_NODE_MAJOR = 20


def _run(argv: list[str], what: str, timeout_s: float, env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    except FileNotFoundError as exc:
        raise StackError(f"{what}: {argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise StackError(
            f"{what} did not finish within {timeout_s:.0f} s (`{' '.join(argv)}`): the registry may be "
            "unreachable or slow; check the network and retry, or raise stack.install_timeout_s"
        ) from exc
    if proc.returncode != 0:
        out = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise StackError(f"{what} failed (exit {proc.returncode}, `{' '.join(argv)}`):\n{out}")
    return proc.stdout


def find_pg_bindir() -> Path | None:
    """The newest PostgreSQL (>= 15) server bin directory from Debian's packages, if any."""
    candidates = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        try:
            major = int(bindir.parent.name)
        except ValueError:
            continue
        if major >= MIN_PG_MAJOR and (bindir / "pg_ctl").exists() and (bindir / "initdb").exists():
            candidates.append((major, bindir))
    return max(candidates)[1] if candidates else None


def ensure_postgres(timeout_s: float) -> Path:
    """PostgreSQL server binaries, installed from Debian's packages when missing (needs root)."""
    bindir = find_pg_bindir()
    if bindir:
        return bindir
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise StackError(
            f"PostgreSQL {MIN_PG_MAJOR}+ server is not installed and cannot be installed automatically "
            "(needs root and apt-get): install the Debian package 'postgresql', then retry"
        )
    # Do not let the package create and start its own cluster on 5432: ours lives under .stack/.
    conf = Path("/etc/postgresql-common/createcluster.conf")
    conf.parent.mkdir(parents=True, exist_ok=True)
    if not conf.exists():
        conf.write_text("create_main_cluster = false\n")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    argv = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]
    try:
        _run(argv, "installing PostgreSQL (apt-get)", timeout_s, env)
    except StackError:
        _run(["apt-get", "update", "-q"], "apt-get update", timeout_s, env)
        _run(argv, "installing PostgreSQL (apt-get)", timeout_s, env)
    bindir = find_pg_bindir()
    if not bindir:
        raise StackError("apt-get installed 'postgresql' but no server >= 15 was found in /usr/lib/postgresql")
    return bindir


def _fingerprint(*files: Path) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _install_registry(mvn: str, jvm_dir: Path, timeout_s: float) -> None:
    """Fetch the Apicurio registry's distribution into the local Maven repository and unpack it."""
    group, artifact, version, classifier, kind = APICURIO_REGISTRY
    argv = [
        mvn,
        "-B",
        "-q",
        f"{DEPENDENCY_PLUGIN}:get",
        f"-Dartifact={group}:{artifact}:{version}:{kind}:{classifier}",
        "-Dtransitive=false",
        "-Dmaven.wagon.http.retryHandler.count=3",
    ]
    _run(argv, f"fetching the Apicurio registry {version} from Maven Central (mvn)", timeout_s)
    repository = Path(os.environ.get("MAVEN_LOCAL_REPOSITORY", Path.home() / ".m2" / "repository"))
    archive = repository / group.replace(".", "/") / artifact / version / f"{artifact}-{version}-{classifier}.{kind}"
    if not archive.exists():
        raise StackError(
            f"Maven fetched the Apicurio registry but {archive} is missing: if your Maven local repository is "
            "elsewhere (settings.xml localRepository), set MAVEN_LOCAL_REPOSITORY to it"
        )
    target = jvm_dir / "apicurio"
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")


def registry_jar(jvm_dir: Path) -> Path | None:
    """The Apicurio registry's runnable jar, once unpacked."""
    return next(iter(sorted((jvm_dir / "apicurio").glob("apicurio-registry-app-*-runner.jar"))), None)


def require_tool(name: str, hint: str) -> str:
    """The path of a program on PATH, or a StackError saying how to get it."""
    path = shutil.which(name)
    if not path:
        raise StackError(f"'{name}' is not on PATH: {hint}")
    return path


def ensure_jvm_jars(jvm_dir: Path, timeout_s: float) -> None:
    """Kafka runtime jars in ``jvm_dir/lib``, the Debezium plugin and Apicurio's Avro converter in
    ``jvm_dir/plugins``, the Apicurio schema registry in ``jvm_dir/apicurio``."""
    marker = jvm_dir / ".installed"
    stamp = _fingerprint(JVM_POM, AVRO_CONVERTER_POM) + repr(APICURIO_REGISTRY)
    if marker.exists() and marker.read_text() == stamp:
        return
    require_tool("java", "install OpenJDK 17+ (Debian: openjdk-17-jre-headless)")
    mvn = require_tool("mvn", "install Maven (Debian: maven)")
    shutil.rmtree(jvm_dir, ignore_errors=True)  # lib/, plugins/ and Maven's unpack markers
    for pom, what in ((JVM_POM, "Kafka, Debezium and Apicurio"), (AVRO_CONVERTER_POM, "Apicurio's Avro converter")):
        argv = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(pom),
            "package",
            f"-Dstack.jvm.dir={jvm_dir}",
            "-Dmaven.wagon.http.retryHandler.count=3",
            "-Daether.connector.requestTimeout=60000",
        ]
        try:
            _run(argv, f"fetching {what} jars from Maven Central (mvn)", timeout_s)
        except StackError as exc:
            if "Could not resolve" in str(exc) or "Could not transfer" in str(exc):
                raise StackError(
                    f"{exc}\nMaven Central could not serve an artifact pinned in {pom}: check the network "
                    "(a proxy goes in ~/.m2/settings.xml) or the pinned versions"
                ) from exc
            raise
    if not any((jvm_dir / "plugins").glob("debezium-connector-postgres/*.jar")):
        raise StackError(f"Maven ran but no Debezium plugin jar is in {jvm_dir / 'plugins'}")
    _install_registry(mvn, jvm_dir, timeout_s)
    if not any((jvm_dir / "plugins").glob("apicurio-converter/apicurio-registry-utils-converter-*.jar")):
        raise StackError(f"Maven ran but Apicurio's Avro converter is not in {jvm_dir / 'plugins'}")
    if registry_jar(jvm_dir) is None:
        raise StackError(f"Maven ran but the Apicurio registry is not in {jvm_dir / 'apicurio'}")
    marker.write_text(stamp)


# Fixes applied to the pinned dynalite after `npm ci`: (file, original text, replacement).
DYNALITE_PATCHES = (
    # dynalite 4.0.0 keys a secondary-index entry by the index key plus only the first six hex digits
    # of an md5 of the table key ("for now just first six chars"): two items with the same index key
    # collide with probability ~n^2/2^25 and the later one silently replaces the earlier in the index
    # (the demo lost 16 of 500,247 items from PaymentStatusIndex). Real DynamoDB has no such loss:
    # key index entries by the whole table key instead.
    (
        "db/index.js",
        "return createKey(item, table, keySchema) + hashPrefix.apply(this, tableKeyPieces)",
        "return createKey(item, table, keySchema) + createKey(item, table) // ddbridge: whole table key",
    ),
)


def patch_dynalite(package: Path) -> None:
    """Apply DYNALITE_PATCHES to an installed dynalite (idempotent; a mismatch is an error)."""
    for relative, original, replacement in DYNALITE_PATCHES:
        path = package / relative
        text = path.read_text(encoding="utf-8")
        if replacement in text:
            continue
        if text.count(original) != 1:
            raise StackError(f"cannot patch {path}: the dynalite source is not the pinned 4.0.0 one")
        path.write_text(text.replace(original, replacement), encoding="utf-8")


def ensure_dynalite(target: Path, timeout_s: float) -> Path:
    """dynalite installed with ``npm ci`` from the pinned lockfile and patched; returns its cli.js."""
    cli = target / "node_modules" / "dynalite" / "cli.js"
    lock = DYNALITE_DIR / "package-lock.json"
    marker = target / ".installed"
    stamp = hashlib.sha256(
        (_fingerprint(DYNALITE_DIR / "package.json", lock) + repr(DYNALITE_PATCHES)).encode()
    ).hexdigest()
    if cli.exists() and marker.exists() and marker.read_text() == stamp:
        return cli
    node = require_tool("node", f"install Node.js {MIN_NODE_MAJOR}+")
    version = _run([node, "--version"], "node --version", 30)
    match = re.match(r"v(\d+)", version.strip())
    if not match or int(match.group(1)) < MIN_NODE_MAJOR:
        raise StackError(f"dynalite needs Node.js >= {MIN_NODE_MAJOR}, found {version.strip()}")
    npm = require_tool("npm", "install npm (it ships with Node.js)")
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(DYNALITE_DIR / "package.json", target / "package.json")
    shutil.copy2(lock, target / "package-lock.json")
    _run(
        [npm, "ci", "--prefix", str(target), "--no-audit", "--no-fund", "--loglevel=error"],
        "installing dynalite from npm (npm ci)",
        timeout_s,
    )
    if not cli.exists():
        raise StackError(f"npm ci finished but {cli} is missing")
    patch_dynalite(cli.parent)
    marker.write_text(stamp)
    return cli


TOXIPROXY = ("github.com/Shopify/toxiproxy/v2/cmd/server", "v2.5.0")
"""The TCP fault proxy, built from the Go module proxy at a pinned version (its binary is ``server``)."""
MIN_GO = (1, 18)


def ensure_toxiproxy(target: Path, timeout_s: float) -> Path:
    """Toxiproxy's server built with ``go install`` at the pinned version; returns the binary."""
    package, version = TOXIPROXY
    binary = target / "bin" / "server"
    marker = target / ".installed"
    if binary.exists() and marker.exists() and marker.read_text() == f"{package}@{version}":
        return binary
    go = require_tool("go", f"install Go {MIN_GO[0]}.{MIN_GO[1]}+ (Debian: golang)")
    found = re.search(r"go(\d+)\.(\d+)", _run([go, "version"], "go version", 30))
    if not found or (int(found.group(1)), int(found.group(2))) < MIN_GO:
        raise StackError(f"Toxiproxy {version} needs Go >= {MIN_GO[0]}.{MIN_GO[1]}")
    target.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOBIN": str(target / "bin"),
        "GOPATH": str(target / "gopath"),
        "GOFLAGS": "-modcacherw",  # the module cache stays deletable
        "GOTOOLCHAIN": "local",
    }
    _run([go, "install", f"{package}@{version}"], f"building Toxiproxy {version} (go install)", timeout_s, env=env)
    if not binary.exists():
        raise StackError(f"go install finished but {binary} is missing")
    marker.write_text(f"{package}@{version}")
    return binary

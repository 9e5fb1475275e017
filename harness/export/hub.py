"""--checkpoint ORG/NAME: a MobileBERT on the Hugging Face hub, fetched once into huggingface_hub's cache.

config.json comes first, so a model that is not MobileBERT is refused before its weights are downloaded; the
snapshot folder is named by the commit it holds, which the manifest records as the revision. Offline
(HF_HUB_OFFLINE=1 or no network) a model already in the cache is used as it is, and one that is not gives one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from common.errors import BadInput, CheckpointError, plain_errors_as

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
# Weights in either format, the config, and the tokenizer files the harness reads (no TF / ONNX / Flax copies)
FILES = ["config.json", "*.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
         "pytorch_model.bin.index.json", "pytorch_model-*.bin", "tokenizer.json", "vocab.txt", "tokenizer_config.json"]


@dataclass
class HubCheckpoint:
    path: Path  # the snapshot folder in the cache
    repo: str
    revision: str  # the commit sha of the snapshot

    def describe(self) -> dict[str, str]:
        return {"hub": self.repo, "revision": self.revision}


def is_hub_id(checkpoint: str | Path) -> bool:
    """ORG/NAME that is not a local path (a folder of that name, or anything starting with . / ~)."""
    text = str(checkpoint)
    return bool(HUB_ID.match(text)) and not Path(text).expanduser().exists()


def _offline_line(repo: str, exc: Exception) -> BadInput:
    return BadInput(f"--checkpoint {repo}: not a local folder nor in the Hugging Face cache, and the hub is "
                    f"unreachable ({type(exc).__name__}); download it where you are online "
                    f"(`hf download {repo}`) or give a local checkpoint folder")


def download(repo: str, progress=lambda s: None) -> HubCheckpoint:
    """The cached snapshot of `repo` (downloaded when online), after checking its model_type is one the harness
    exports (mobilebert, bert, distilbert)."""
    import huggingface_hub
    from huggingface_hub import errors

    from model import bert_family

    progress(f"fetching {repo} from the Hugging Face hub (cached after the first time)")
    try:
        config = huggingface_hub.hf_hub_download(repo, "config.json")
        with plain_errors_as(CheckpointError):
            d = bert_family.read_config(Path(config).parent)
        if bert_family.model_type_of(d) not in bert_family.SUPPORTED_MODEL_TYPES:
            raise CheckpointError(bert_family.unsupported(f"--checkpoint {repo}", d))
        snapshot = Path(huggingface_hub.snapshot_download(repo, allow_patterns=FILES))
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled) as e:
        raise _offline_line(repo, e) from None
    except (errors.RepositoryNotFoundError, errors.GatedRepoError) as e:
        raise BadInput(f"--checkpoint {repo}: no such model on the Hugging Face hub, or it needs a login "
                       f"({type(e).__name__}); check the name or give a local folder") from None
    except errors.RevisionNotFoundError:
        raise BadInput(f"--checkpoint {repo}: revision not found on the hub") from None
    except errors.RemoteEntryNotFoundError:
        raise BadInput(f"--checkpoint {repo}: the hub repository has no config.json (not a transformers model)") from None
    except errors.HfHubHTTPError as e:
        raise BadInput(f"--checkpoint {repo}: the hub answered {str(e).splitlines()[0][:160]}") from None
    except Exception as e:  # network failures below huggingface_hub (httpx, sockets) mean: offline
        if isinstance(e, OSError) or type(e).__module__.split(".")[0] in ("httpx", "httpcore", "requests"):
            raise _offline_line(repo, e) from None
        raise
    return HubCheckpoint(snapshot, repo, snapshot.name)

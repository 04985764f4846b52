"""What each explorer page shows, as JSON-ready dicts: queries over the event index, plus the
SDK for what events cannot say (a version's package, a receipt's live verification).

`Explorer` has one method per page; the web app's routes parse their parameters, call one of
them and render the result as HTML or JSON. Nothing here scans the chain's logs: the indexer
did that. It never signs or sends a transaction.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aicommons.commit import JsonInputError, keccak256, parse_json
from aicommons.explorer import governance_views, market_views
from aicommons.explorer.errors import BadRequest, NotFound, PayloadTooLarge
from aicommons.explorer.schema import page_event
from aicommons.explorer.store import Event, EventIndex
from aicommons.sdk import protocol
from aicommons.sdk.errors import ReceiptError
from aicommons.sdk.receipt import Receipt

UPLOAD_MAX_BYTES = 1 << 20
"""Largest receipt the explorer verifies from an upload (a digits receipt is ~2 KB)."""
LATEST = 25
"""Rows in a page's "latest" tables."""
HEALTH_TTL_S = 30.0
"""How long a storage node's answer about a blob is reused before it is asked again."""

_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")
_NUMERIC_ID = re.compile(r"[0-9]{1,78}|0x[0-9a-fA-F]{1,64}")


# -- parameters (untrusted text from URLs and forms) -------------------------------------------


def parse_hex32(value: str, *, what: str) -> str:
    """A 32-byte id as lowercase 0x hex, or `BadRequest` naming `what`."""
    if not _HEX32.fullmatch(value):
        raise BadRequest(f"{what} must be 0x and 64 hex digits, got {value[:80]!r}")
    return value.lower()


def parse_model_name(value: str) -> str:
    if not protocol.is_valid_slug(value):
        raise BadRequest(f"{value[:80]!r} is not a model name (3-64 of a-z, 0-9 and '-')")
    return value


def parse_numeric_id(value: str, *, what: str) -> str:
    """A uint256 id as the index stores it (decimal text); accepts decimal or 0x hex."""
    if not _NUMERIC_ID.fullmatch(value):
        raise BadRequest(f"{what} must be a decimal or 0x hex number, got {value[:80]!r}")
    number = int(value, 16) if value.startswith("0x") else int(value)
    if number >= 2**256:
        raise BadRequest(f"{what} does not fit in 256 bits")
    return str(number)


def parse_receipt_upload(data: bytes) -> Receipt:
    """An uploaded receipt, refused by size, JSON validity and fields, each with its reason."""
    if len(data) > UPLOAD_MAX_BYTES:
        raise PayloadTooLarge(
            f"receipt is {len(data)} bytes, more than the limit of {UPLOAD_MAX_BYTES}"
        )
    if not data.strip():
        raise BadRequest("no receipt given: choose a receipt JSON file or paste one")
    try:
        return Receipt.from_json(
            parse_json(data, what="uploaded receipt", max_bytes=UPLOAD_MAX_BYTES)
        )
    except (JsonInputError, ReceiptError) as exc:
        raise BadRequest(str(exc)) from None


# -- helpers ------------------------------------------------------------------------------------


def _day(timestamp: int | None) -> str:
    return datetime.fromtimestamp(timestamp or 0, UTC).date().isoformat()


def _days_series(counts: dict[str, int], fees: dict[str, int]) -> dict[str, Any]:
    """Per-day series from the first to the last day with data, zero days included."""
    if not counts:
        return {"days": [], "counts": [], "fees": [], "fees_aic": []}
    first, last = date.fromisoformat(min(counts)), date.fromisoformat(max(counts))
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    return {
        "days": days,
        "counts": [counts.get(day, 0) for day in days],
        "fees": [str(fees.get(day, 0)) for day in days],
        "fees_aic": [format_units(fees.get(day, 0), grouped=False) for day in days],
    }


def format_units(amount: int, decimals: int = 18, *, grouped: bool = True) -> str:
    """Base units as an exact decimal string (10**16 → "0.01"; thousands grouped by default)."""
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(int(amount)), 10**decimals)
    text = f"{fraction:0{decimals}d}".rstrip("0")
    return (f"{sign}{whole:,}" if grouped else f"{sign}{whole}") + (f".{text}" if text else "")


class PageCache:
    """Values computed once per index height (or per TTL), shared by the request threads."""

    def __init__(self) -> None:
        self._values: dict[Any, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, stamp: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:
            found = self._values.get(key)
        if found is not None and found[0] == stamp:
            return found[1]
        value = compute()
        with self._lock:
            if len(self._values) > 4096:
                self._values.clear()
            self._values[key] = (stamp, value)
        return value


class Explorer:
    """The pages' data: the event index for history, the SDK client for packages and checks."""

    def __init__(self, client: Any, index: EventIndex) -> None:
        self.client = client
        self.index = index
        self._cache = PageCache()

    # -- shared ------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self.index.indexed_to() or 0

    def _cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        return self._cache.get(key, self.height, compute)

    @property
    def contracts(self) -> dict[str, str]:
        return dict(self.client.deployment.contracts)

    def _catalogue(self) -> dict[str, dict[str, Any]]:
        """Every model by id with its versions, from registry and executor events."""
        return self._cached("catalogue", self._build_catalogue)

    def _build_catalogue(self) -> dict[str, dict[str, Any]]:
        models: dict[str, dict[str, Any]] = {}
        for event in self.index.events(contract="ModelRegistry", event="ModelRegistered"):
            models[str(event.args["model_id"]).lower()] = {
                "name": event.args["slug"],
                "model_id": str(event.args["model_id"]).lower(),
                "registrant": event.args["owner"],
                "registered_block": event.block_number,
                "versions": [],
            }
        canonical = {
            str(e.args["model_id"]).lower(): str(e.args["version_id"]).lower()
            for e in self.index.events(contract="ModelRegistry", event="CanonicalSet")
        }
        # Versions are keyed by (model id, version id): one package may serve two models.
        deprecated = {
            _version_key(e.args)
            for e in self.index.events(contract="ModelRegistry", event="VersionDeprecated")
        }
        ready = {
            _version_key(e.args)
            for e in self.index.events(contract="OnchainExecutor", event="ModelReady")
        }
        usage = {
            (str(row[0]), str(row[1])): int(row[2])
            for row in self.index.query(
                "SELECT model_id, version_id, COUNT(*) FROM events "
                "WHERE contract = 'OnchainExecutor' AND event = 'Inference' "
                "GROUP BY model_id, version_id"
            )
        }
        for event in self.index.events(contract="ModelRegistry", event="VersionPublished"):
            args = event.args
            model = models.get(str(args["model_id"]).lower())
            if model is None:
                continue
            version_id = str(args["version_id"]).lower()
            key = (model["model_id"], version_id)
            model["versions"].append(
                {
                    "model": model["name"],
                    "model_id": model["model_id"],
                    "version_id": version_id,
                    "weights_root": args["weights_root"],
                    "fee": int(args["fee"]),
                    "fee_text": format_units(int(args["fee"])),
                    "modes": protocol.mode_names(int(args["modes"])),
                    "licence": args["licence"],
                    "locators": list(args["locators"]),
                    "attribution": [
                        {
                            "account": entry["account"],
                            "role": protocol.role_name(int(entry["role"])),
                            "share_bps": int(entry["share_bps"]),
                        }
                        for entry in args["attribution"]
                    ],
                    "published_block": event.block_number,
                    "published_tx": event.tx_hash,
                    "canonical": canonical.get(model["model_id"]) == version_id,
                    "deprecated": key in deprecated,
                    "onchain_ready": key in ready,
                    "inferences": usage.get(key, 0),
                }
            )
        return models

    def _model_by_name(self, name: str) -> dict[str, Any]:
        model_id = "0x" + keccak256(name.encode()).hex()
        model = self._catalogue().get(model_id)
        if model is None:
            raise NotFound(f"no model named {name!r} is registered")
        return model

    def _version(self, name: str, version_id: str) -> dict[str, Any]:
        model = self._model_by_name(name)
        for version in model["versions"]:
            if version["version_id"] == version_id:
                return version
        raise NotFound(f"model {name!r} has no version {version_id}")

    def _usage(self, **ids: str) -> dict[str, Any]:
        """Inferences and fees per day (and in total) for the events matching `ids`."""
        counts: Counter[str] = Counter()
        fees: Counter[str] = Counter()
        for event in self.index.events(contract="OnchainExecutor", event="Inference", **ids):
            day = _day(event.timestamp)
            counts[day] += 1
            fees[day] += int(event.args["fee"])
        total_fees = sum(fees.values())
        return {
            "inferences": sum(counts.values()),
            "fees": str(total_fees),
            "fees_text": format_units(total_fees),
            "per_day": _days_series(dict(counts), dict(fees)),
        }

    # -- pages -------------------------------------------------------------------------------

    def home(self) -> dict[str, Any]:
        return self._cached("home", self._home)

    def _home(self) -> dict[str, Any]:
        catalogue = self._catalogue()
        usage = self._usage()
        requests = self._market_requests_per_day()
        stake = self._stake_held()
        return {
            "chain_id": self.client.chain_id,
            "block": self.height,
            "contracts": self.contracts,
            "events": self.index.total_events(),
            "models": len(catalogue),
            "versions": sum(len(m["versions"]) for m in catalogue.values()),
            "inferences": usage["inferences"],
            "fees_paid": usage["fees"],
            "fees_paid_text": usage["fees_text"],
            "inferences_per_day": usage["per_day"],
            "requests_per_day": requests,
            "market_requests": self.index.count(contract="ComputeMarket", event="RequestCreated"),
            "disputes": self.index.count(contract="DisputeGame", event="Challenged"),
            "proposals": self.index.count(contract="Governor", event="ProposalCreated"),
            "stake_held": str(stake),
            "stake_held_text": format_units(stake),
            "latest_inferences": [
                self._inference_row(e)
                for e in self.index.events(
                    contract="OnchainExecutor", event="Inference", newest_first=True, limit=10
                )
            ],
        }

    def _market_requests_per_day(self) -> dict[str, Any]:
        counts: Counter[str] = Counter()
        for event in self.index.events(event="RequestCreated"):
            counts[_day(event.timestamp)] += 1
        return _days_series(dict(counts), {})

    def _stake_held(self) -> int:
        """Stake held by every contract that takes stakes: staked, less unstaked and slashed."""
        held = 0
        for event in self.index.events(event=("Staked", "Unstaked", "StakeWithdrawn", "Slashed")):
            amount = int(event.args.get("amount", 0) or 0)
            held += amount if event.event == "Staked" else -amount
        return max(held, 0)

    def _inference_row(self, event: Event) -> dict[str, Any]:
        version_id = str(event.args["version_id"]).lower()
        return {
            "tx_hash": event.tx_hash,
            "block_number": event.block_number,
            "model": self._model_name(event.args),
            "version_id": version_id,
            "caller": event.args["caller"],
            "label": event.args["label"],
            "fee_text": format_units(int(event.args["fee"])),
            "time": _time(event.timestamp),
        }

    def _model_name(self, args: dict[str, Any]) -> str | None:
        """The slug of the model an event names (by `model_id`)."""
        model = self._catalogue().get(str(args.get("model_id", "")).lower())
        return None if model is None else str(model["name"])

    def models(
        self,
        *,
        search: str = "",
        licence: str = "",
        placement: str = "",
        mode: str = "",
    ) -> dict[str, Any]:
        if placement not in ("", "onchain", "offchain"):
            raise BadRequest("placement is onchain or offchain")
        if mode and mode not in protocol.MODES:
            raise BadRequest(f"mode is one of {', '.join(protocol.MODES)}")
        rows = []
        catalogue = self._catalogue()
        for model in sorted(catalogue.values(), key=lambda m: m["name"]):
            versions = model["versions"]
            onchain = any(v["onchain_ready"] for v in versions)
            licences = sorted({v["licence"] for v in versions})
            modes = sorted({name for v in versions for name in v["modes"]})
            if search and search.lower() not in model["name"]:
                continue
            if licence and licence not in licences:
                continue
            if placement and (placement == "onchain") != onchain:
                continue
            if mode and mode not in modes:
                continue
            rows.append(
                {
                    "name": model["name"],
                    "model_id": model["model_id"],
                    "versions": len(versions),
                    "licences": licences,
                    "modes": modes,
                    "onchain": onchain,
                    "inferences": sum(v["inferences"] for v in versions),
                }
            )
        every_licence = sorted({v["licence"] for m in catalogue.values() for v in m["versions"]})
        return {
            "models": rows,
            "filters": {
                "search": search,
                "licence": licence,
                "placement": placement,
                "mode": mode,
            },
            "licences": every_licence,
            "modes": list(protocol.MODES),
        }

    def model(self, name: str) -> dict[str, Any]:
        model = self._model_by_name(parse_model_name(name))
        return {
            **{k: v for k, v in model.items() if k != "versions"},
            "versions": model["versions"],
            "usage": self._cached(
                ("usage-model", name), lambda: self._usage(model_id=model["model_id"])
            ),
        }

    def version(self, name: str, version_id: str) -> dict[str, Any]:
        name = parse_model_name(name)
        version_id = parse_hex32(version_id, what="version id")
        version = self._version(name, version_id)
        ids = {"model_id": version["model_id"], "version_id": version_id}
        return {
            "version": version,
            "manifest": self.manifest_summary(name, version_id),
            "storage": self._storage_of(version),
            "usage": self._cached(("usage-version", name, version_id), lambda: self._usage(**ids)),
            "latest_inferences": self._cached(
                ("latest-version", name, version_id),
                lambda: [
                    self._inference_row(e)
                    for e in self.index.events(
                        contract="OnchainExecutor",
                        event="Inference",
                        newest_first=True,
                        limit=LATEST,
                        **ids,
                    )
                ],
            ),
            "snippets": _snippets(name, version_id, self.client.rpc_url, version["onchain_ready"]),
        }

    def manifest_summary(self, name: str, version_id: str) -> dict[str, Any]:
        """The package in human terms (layers, parameters, MACs, quantisation), derived once
        from the package fetched and verified by the SDK, then kept in the index."""
        key = f"package:{version_id}"
        summary = self.index.derived(key)
        if summary is not None:
            return summary
        self._version(name, version_id)  # NotFound before any chain or storage request
        try:
            registered = self.client.registry.version(name, bytes.fromhex(version_id[2:]))
            package = self.client.storage.fetch_package(registered)
        except Exception as exc:  # storage down or no node given: the page says so, no cache
            return {"available": False, "reason": (str(exc) or type(exc).__name__)[:300]}
        summary = _describe_package(package)
        self.index.set_derived(key, summary)
        return summary

    def _storage_of(self, version: dict[str, Any]) -> list[dict[str, Any]]:
        """Each locator of a version, the nodes holding it now and its StorageRegistry record."""
        rows = []
        for locator in version["locators"]:
            row: dict[str, Any] = {"locator": locator, "nodes": [], "commitments": []}
            if locator.startswith(protocol.LOCATOR_PREFIX):
                blob_id = locator.removeprefix(protocol.LOCATOR_PREFIX)
                row["nodes"] = [self._node_health(node, blob_id) for node in self._nodes()]
                root = next((n["root"] for n in row["nodes"] if n.get("root")), None)
                row["root"] = root
                if root:
                    row["commitments"] = self._commitments(root=root)
            rows.append(row)
        return rows

    def _nodes(self) -> list[str]:
        return list(self.client.storage_nodes)

    def _node_health(self, node: str, blob_id: str) -> dict[str, Any]:
        return self._cache.get(
            ("health", node, blob_id),
            int(time.monotonic() // HEALTH_TTL_S),
            lambda: _probe_blob(node, blob_id),
        )

    def _commitments(self, **ids: str) -> list[dict[str, Any]]:
        """StorageRegistry commitments (of a root or an account) with their challenge record."""
        rows = []
        for event in self.index.events(contract="StorageRegistry", event="Committed", **ids):
            root, provider = str(event.args["root"]).lower(), event.args["provider"]
            challenges = self.index.events(
                contract="StorageRegistry", event="ChallengeOpened", root=root
            )
            outcomes = self._challenge_outcomes([str(c.args["challenge_id"]) for c in challenges])
            released = self.index.count(contract="StorageRegistry", event="Released", root=root)
            rows.append(
                {
                    "provider": provider,
                    "root": root,
                    "leaf_count": event.args.get("leaf_count"),
                    "locked_text": format_units(int(event.args.get("locked", 0))),
                    "block_number": event.block_number,
                    "released": bool(released),
                    "challenges": len(challenges),
                    "passed": outcomes["passed"],
                    "failed": outcomes["failed"],
                    "last": outcomes["last"],
                }
            )
        return rows

    def _challenge_outcomes(self, challenge_ids: Sequence[str]) -> dict[str, Any]:
        passed = failed = 0
        last: dict[str, Any] | None = None
        for challenge_id in challenge_ids:
            for event in self.index.events(
                contract="StorageRegistry",
                event=("ChallengePassed", "Slashed"),
                challenge_id=challenge_id,
            ):
                ok = event.event == "ChallengePassed"
                passed, failed = passed + ok, failed + (not ok)
                if last is None or event.block_number >= last["block_number"]:
                    last = {"passed": ok, "block_number": event.block_number}
        return {"passed": passed, "failed": failed, "last": last}

    # -- receipts ----------------------------------------------------------------------------

    def receipt(self, tx_hash: str) -> Receipt:
        """The receipt of an indexed on-chain inference, rebuilt from its event and transaction
        (the input is read from the transaction's calldata)."""
        tx_hash = parse_hex32(tx_hash, what="transaction hash")
        key = f"page:receipt:{tx_hash}"
        stored = self.index.derived(key)
        if stored is not None:
            return Receipt.from_json(stored)
        events = self.index.events(contract="OnchainExecutor", event="Inference", tx_hash=tx_hash)
        if not events:
            raise NotFound(f"no indexed inference in transaction {tx_hash}")
        event = events[0]
        executor = self.client.contract("OnchainExecutor")
        transaction = self.client.w3.eth.get_transaction(tx_hash)
        _function, call = executor.decode_function_input(transaction["input"])
        values = [b - 256 if b > 127 else b for b in bytes(call["input"])]
        version_id = str(event.args["version_id"]).lower()
        receipt = Receipt(
            chain_id=self.client.chain_id,
            executor=self.contracts["OnchainExecutor"],
            registry=self.contracts["ModelRegistry"],
            tx_hash=tx_hash,
            block_number=event.block_number,
            block_hash=event.block_hash,
            model=self._model_name(event.args) or "",
            version_id=version_id,
            caller=str(event.args["caller"]),
            input=values,
            input_hash=str(event.args["input_hash"]),
            output=[int(v) for v in event.args["output"]],
            output_hash=str(event.args["output_hash"]),
            label=int(event.args["label"]),
            fee=int(event.args["fee"]),
        )
        self.index.set_derived(key, receipt.to_json())
        return receipt

    def inference(self, tx_hash: str) -> dict[str, Any]:
        """An inference's receipt and the live result of every `aic verify` check (recomputed
        whenever the indexed chain moves)."""
        receipt = self.receipt(tx_hash)
        report = self._cached(("verify", receipt.tx_hash), lambda: self.client.verify(receipt))
        return {
            "receipt": receipt.to_json(),
            "fee_text": format_units(receipt.fee),
            "verification": report.to_json(),
        }

    def verify_upload(self, data: bytes) -> dict[str, Any]:
        """Verify a receipt someone uploaded, with the same checks as `aic verify`."""
        receipt = parse_receipt_upload(data)
        return {"receipt": receipt.to_json(), "verification": self.client.verify(receipt).to_json()}

    # -- storage, market, governance, generic ------------------------------------------------

    def storage(self) -> dict[str, Any]:
        return self._cached("storage", self._storage)

    def _storage(self) -> dict[str, Any]:
        providers: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"stake": 0, "blobs": 0, "passed": 0, "failed": 0, "slashed": 0}
        )
        for event in self.index.events(contract="StorageRegistry"):
            provider = event.args.get("provider")
            if provider is None:
                continue
            row = providers[provider]
            amount = int(event.args.get("amount", 0) or 0)
            if event.event == "Staked":
                row["stake"] += amount
            elif event.event == "Unstaked":
                row["stake"] -= amount
            elif event.event == "Committed":
                row["blobs"] += 1
            elif event.event == "Released":
                row["blobs"] -= 1
            elif event.event == "ChallengePassed":
                row["passed"] += 1
            elif event.event == "Slashed":
                row["failed"] += 1
                row["slashed"] += amount
                row["stake"] -= amount
        return {
            "deployed": "StorageRegistry" in self.contracts,
            "providers": [
                {
                    "provider": provider,
                    **row,
                    "stake_text": format_units(row["stake"]),
                    "slashed_text": format_units(row["slashed"]),
                }
                for provider, row in sorted(providers.items())
            ],
            "nodes": self._nodes(),
        }

    def _deployed(self, name: str) -> bool:
        return name in self.contracts

    @property
    def now(self) -> int | None:
        """The indexed head's timestamp: the clock deadlines and rounds are judged by."""
        return self.index.block_timestamp(self.height)

    def market(self) -> dict[str, Any]:
        return self._cached("market", self._market)

    def _market(self) -> dict[str, Any]:
        if not self._deployed("ComputeMarket"):
            return {"deployed": False, "contract": None}
        now = self.now
        requests = []
        for created in self.index.events(
            contract="ComputeMarket",
            event=page_event("ComputeMarket", "RequestCreated"),
            newest_first=True,
            limit=LATEST,
        ):
            request_id = str(created.args["request_id"])
            view = market_views.request_view(
                self._request_events(request_id), now=now, units=format_units
            )
            requests.append(
                {
                    key: view[key]
                    for key in ("request_id", "requester", "mode", "status", "max_fee_text")
                }
                | {"model": self._model_name(created.args), "block_number": created.block_number}
            )
        disputes = [
            market_views.dispute_summary(self._dispute_events(str(e.args["dispute_id"])), now=now)
            for e in self.index.events(
                contract="DisputeGame",
                event=page_event("DisputeGame", "Challenged"),
                newest_first=True,
                limit=LATEST,
            )
        ]
        return {
            "deployed": True,
            "contract": "ComputeMarket",
            "requests": requests,
            "request_count": self.index.count(contract="ComputeMarket", event="RequestCreated"),
            "disputes": disputes,
            "dispute_count": self.index.count(contract="DisputeGame", event="Challenged"),
            "providers": market_views.providers_view(
                self.index.events(contract="ComputeMarket"), units=format_units
            ),
        }

    def _request_events(self, request_id: str) -> list[Event]:
        """Every event naming a request (market, dispute game, redundant mode) and the batch
        posts that carry its result, in chain order."""
        events = self.index.events(request_id=request_id)
        providers = {
            str(e.args["provider"]).lower() for e in events if e.event in ("Claimed", "Committed")
        }
        batches = [
            batch
            for provider in sorted(providers)
            for batch in self.index.events(
                contract="ComputeMarket",
                event=page_event("ComputeMarket", "BatchPosted"),
                account=provider,
            )
            if int(request_id) in [int(r) for r in batch.args["request_ids"]]
        ]
        return sorted([*events, *batches], key=lambda e: (e.block_number, e.log_index))

    def market_request(self, request_id: str) -> dict[str, Any]:
        """A market request: what was asked, its status and every event naming it."""
        request_id = parse_numeric_id(request_id, what="request id")
        events = self._request_events(request_id)
        if not any(e.event == "RequestCreated" for e in events):
            raise NotFound(f"no market request {request_id} in the index")
        view = market_views.request_view(events, now=self.now, units=format_units)
        view["events"] = [_event_row(e) for e in events]
        view["model"] = self._model_name({"model_id": view["model_id"]})
        view["deadline_time"] = _time(view["deadline"])
        return view

    def _dispute_events(self, dispute_id: str) -> list[Event]:
        return self.index.events(contract="DisputeGame", dispute_id=dispute_id)

    def market_dispute(self, dispute_id: str) -> dict[str, Any]:
        """A dispute, round by round, with the market's settlement of its verdict."""
        dispute_id = parse_numeric_id(dispute_id, what="dispute id")
        events = self._dispute_events(dispute_id)
        if not events or events[0].event != "Challenged":
            raise NotFound(f"no dispute {dispute_id} in the index")
        ended = [e for e in events if e.event in market_views.DISPUTE_END]
        consequences = [
            e
            for end in ended
            for e in self.index.events(tx_hash=end.tx_hash)
            if e.contract == "ComputeMarket"
        ]
        view = market_views.dispute_view(events, now=self.now, consequences=consequences)
        view["bond_text"] = format_units(int(view["bond"]))
        for step in view["steps"]:
            step["time"] = _time(step["timestamp"])
            step["deadline_time"] = _time(step.get("deadline"))
        for consequence in view["consequences"]:
            consequence["time"] = _time(consequence["timestamp"])
        if view["deadline"] is not None:
            view["deadline_time"] = _time(view["deadline"])
        return view

    def governance(self) -> dict[str, Any]:
        return self._cached("governance", self._governance)

    def _governance(self) -> dict[str, Any]:
        proposals = []
        if self._deployed("Governor"):
            for created in self.index.events(
                contract="Governor",
                event=page_event("Governor", "ProposalCreated"),
                newest_first=True,
                limit=LATEST,
            ):
                view = self._proposal(str(created.args["proposalId"]))
                proposals.append(
                    {
                        key: view[key]
                        for key in ("proposal_id", "state", "votes", "voters", "description")
                    }
                    | {
                        "block_number": created.block_number,
                        "votes_text": {k: format_units(int(v)) for k, v in view["votes"].items()},
                    }
                )
        rounds = []
        if self._deployed("FundingRound"):
            for opened in self.index.events(
                contract="FundingRound",
                event=page_event("FundingRound", "RoundOpened"),
                newest_first=True,
                limit=LATEST,
            ):
                view = self._round(str(opened.args["round_id"]))
                rounds.append(
                    {
                        key: view[key]
                        for key in (
                            "round_id",
                            "state",
                            "pool_text",
                            "contributed_text",
                            "projects",
                            "matched_text",
                        )
                    }
                    | {"contributions": len(view["contributions"])}
                )
        treasury = None
        if self._deployed("Treasury"):
            treasury = governance_views.treasury_view(
                self.index.events(contract="Treasury"), units=format_units
            )
        timelock = None
        if self._deployed("Timelock"):
            timelock = governance_views.timelock_view(
                self.index.events(
                    contract="Timelock", event=("CallScheduled", "CallExecuted", "Cancelled")
                )
            )[:LATEST]
        return {
            "timelock": timelock,
            "governor": "Governor" if self._deployed("Governor") else None,
            "funding": "FundingRound" if self._deployed("FundingRound") else None,
            "proposals": proposals,
            "rounds": rounds,
            "treasury": treasury,
        }

    def _proposal_state(self, proposal_id: int, events: Sequence[Event]) -> str:
        """The Governor's own `state(id)` now (succeeded/defeated need the quorum it keeps);
        cached per indexed height."""
        from aicommons.governance.proposals import state_name

        def read() -> str:
            governor = self.client.contract("Governor")
            return state_name(int(governor.functions.state(proposal_id).call()))

        return str(self._cached(("proposal-state", proposal_id), read))

    def _proposal(self, proposal_id: str) -> dict[str, Any]:
        events = self.index.events(contract="Governor", proposal_id=proposal_id)
        if not any(e.event == "ProposalCreated" for e in events):
            raise NotFound(f"no proposal {proposal_id} in the index")
        same_tx = {
            e.tx_hash: [x for x in self.index.events(tx_hash=e.tx_hash) if x.contract != "Governor"]
            for e in events
            if e.event in governance_views.TIMELOCK_STEPS
        }
        return governance_views.proposal_view(
            events,
            state=self._proposal_state(int(proposal_id), events),
            same_tx=same_tx,
            describe=self._describe_call,
            units=format_units,
            when=_time,
        )

    def proposal(self, proposal_id: str) -> dict[str, Any]:
        """A proposal: actions, live state, tally and timeline."""
        view = self._proposal(parse_numeric_id(proposal_id, what="proposal id"))
        for step in view["steps"]:
            step["time"] = _time(step["timestamp"])
            for effect in step.get("effects", ()):
                effect["time"] = _time(effect["timestamp"])
        for key in ("vote_start", "vote_end", "eta"):
            view[f"{key}_time"] = _time(view[key])
        view["votes_text"] = {k: format_units(int(v)) for k, v in view["votes"].items()}
        return view

    def _describe_call(self, target: str, calldata: bytes) -> str:
        """`Contract.function(arg=value, ...)` for a call into this deployment, else the raw
        target and selector."""
        from aicommons.chain.compile import compile_contract

        names = {address.lower(): name for name, address in self.contracts.items()}
        name = names.get(target.lower())
        if name is not None:
            contract = self.client.w3.eth.contract(abi=compile_contract(name).abi)
            try:
                function, args = contract.decode_function_input(calldata)
            except ValueError:  # not one of its functions: shown raw below
                pass
            else:
                shown = ", ".join(
                    f"{key}={'0x' + value.hex() if isinstance(value, bytes) else value}"
                    for key, value in args.items()
                )
                return f"{name}.{function.fn_name}({shown})"
        return f"{name or target}: 0x{calldata[:4].hex()} ({len(calldata)} bytes)"

    def _round(self, round_id: str) -> dict[str, Any]:
        events = self.index.events(contract="FundingRound", round_id=round_id)
        if not any(e.event == "RoundOpened" for e in events):
            raise NotFound(f"no funding round {round_id} in the index")
        names = {model_id: model["name"] for model_id, model in self._catalogue().items()}
        return governance_views.round_view(events, now=self.now, names=names, units=format_units)

    def funding_round(self, round_id: str) -> dict[str, Any]:
        """A funding round: contributions, the projected match, the settlement."""
        view = self._round(parse_numeric_id(round_id, what="round id"))
        view["start_time"], view["end_time"] = _time(view["start"]), _time(view["end"])
        return view

    def contract_events(self, name: str) -> dict[str, Any]:
        if name not in self.contracts:
            raise NotFound(f"the deployment has no contract named {name[:80]!r}")
        events = self.index.events(contract=name, newest_first=True, limit=100)
        counts = {
            str(row[0]): int(row[1])
            for row in self.index.query(
                "SELECT event, COUNT(*) FROM events WHERE contract = ? GROUP BY event", (name,)
            )
        }
        return {
            "name": name,
            "address": self.contracts[name],
            "counts": counts,
            "events": [_event_row(e) for e in events],
        }

    def transaction(self, tx_hash: str) -> dict[str, Any]:
        tx_hash = parse_hex32(tx_hash, what="transaction hash")
        events = self.index.events(tx_hash=tx_hash)
        if not events:
            raise NotFound(f"no indexed event in transaction {tx_hash}")
        inference = any(e.event == "Inference" for e in events)
        rows = [_event_row(e) for e in events]
        return {"tx_hash": tx_hash, "inference": inference, "events": rows}


def _version_key(args: dict[str, Any]) -> tuple[str, str]:
    return str(args.get("model_id", "")).lower(), str(args["version_id"]).lower()


def _time(timestamp: int | None) -> str:
    """A unix time as UTC text; one a calendar cannot hold (a contract's "never") as its number."""
    if timestamp is None:
        return ""
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"unix time {timestamp}"


def _event_row(event: Event) -> dict[str, Any]:
    return {**event.to_json(), "time": _time(event.timestamp)}


def _describe_package(package: Any) -> dict[str, Any]:
    layers = []
    for layer in package.layers:
        tensors = {role: package.tensors[name] for role, name in layer.tensors.items()}
        attrs = layer.attrs
        layers.append(
            {
                "name": layer.name,
                "op": layer.op,
                "out_shape": list(layer.out_shape),
                "out_dtype": layer.out_dtype,
                "parameters": int(sum(t.size for t in tensors.values())),
                "weight_shape": list(tensors["weight"].shape) if "weight" in tensors else None,
                "attrs": {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()},
            }
        )
    manifest = package.manifest
    return {
        "available": True,
        "format": manifest.get("format"),
        "semantics": manifest.get("semantics"),
        "input_shape": list(package.input_shape),
        "input_scale": str(manifest.get("input", {}).get("scale", "")),
        "layers": layers,
        "parameters": package.parameter_count,
        "macs": package.macs_per_sample,
        "quantisation": "int8 activations, per-output-channel int8 weights, int32 biases; "
        "requantised with an int32 multiplier and shift per channel",
    }


def _probe_blob(node: str, blob_id: str) -> dict[str, Any]:
    from aicommons.storage.client import NodeReport, fetch_manifest
    from aicommons.storage.transport import NodeTransport

    report = NodeReport()
    try:
        manifest = fetch_manifest(blob_id, [node], NodeTransport(timeout=3.0), report)
    except Exception:  # the node is down or refuses: that is the health being reported
        return {"node": node, "held": False, "reason": " | ".join(report.lines())[:200]}
    return {
        "node": node,
        "held": True,
        "chunks": len(manifest.chunks),
        "size": manifest.size,
        "root": "0x" + manifest.root.hex(),
    }


def _snippets(name: str, version_id: str, rpc_url: str, onchain: bool) -> dict[str, str]:
    reference = f"{name}@{version_id}"
    cli = (
        f"aic infer {reference} --input x.json --receipt receipt.json --rpc {rpc_url}\n"
        "aic verify receipt.json"
        if onchain
        else f"aic model show {reference} --rpc {rpc_url}"
    )
    sdk = (
        "from aicommons.chain.accounts import load_account\n"
        "from aicommons.sdk.client import Client\n\n"
        f'client = Client("{rpc_url}", account=load_account("dev0", None), '
        "storage_nodes=[...])\n"
        + (
            f'receipt = client.inference.infer("{reference}", x)  # x: one input sample\n'
            "print(receipt.label, client.verify(receipt).ok)"
            if onchain
            else f'version = client.registry.resolve("{reference}")\n'
            "package = client.storage.fetch_package(version)  # run it locally: package.run(x)"
        )
    )
    return {"cli": cli, "sdk": sdk}

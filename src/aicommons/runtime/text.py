"""Text into token ids, with the tokenizer a package commits to (Hugging Face `tokenizers`).

The package's tokenizer.json bytes (covered by its version id) and its truncation length decide
the ids; this module only applies them. Bad text (empty, not UTF-8, not a string) is refused
with one line naming the text; truncation is never silent: `Encoded.truncated` reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aicommons.commit import keccak256
from aicommons.runtime.errors import InputError, PackageError
from aicommons.runtime.package import ModelPackage

MAX_TEXTS = 65_536
"""Most texts one call embeds (bounds what a single request allocates)."""
MAX_TEXT_CHARS = 1 << 20
"""Longest text accepted, in characters, before tokenising (truncation keeps the first tokens)."""


@dataclass(frozen=True)
class Truncation:
    """Text `index` had `tokens` tokens (specials included) and was cut to `kept`."""

    index: int
    tokens: int
    kept: int


@dataclass(frozen=True)
class Encoded:
    """Token ids [N, L] padded on the right with `pad_id` to the longest text of the batch."""

    ids: np.ndarray
    lengths: tuple[int, ...]
    truncated: tuple[Truncation, ...]

    @property
    def mask(self) -> np.ndarray:
        """1 for a real token, 0 for padding ([N, L], int8)."""
        positions = np.arange(self.ids.shape[1])
        return (positions[None, :] < np.array(self.lengths)[:, None]).astype(np.int8)


class TextTokenizer:
    """A tokenizer.json with its truncation length and pad id (prepared once, then pure)."""

    def __init__(self, tokenizer_json: bytes, max_length: int, pad_id: int) -> None:
        from tokenizers import Tokenizer

        try:
            text = tokenizer_json.decode("utf-8")
            truncating = Tokenizer.from_str(text)
            whole = Tokenizer.from_str(text)
        except (UnicodeDecodeError, Exception) as exc:  # tokenizers raises plain Exception
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise PackageError(f"tokenizer.json cannot be loaded: {first}") from None
        if max_length < 3:
            raise PackageError(f"tokenizer max_length {max_length} leaves no room for text")
        truncation, padding = truncating.truncation, truncating.padding
        self.configured_max_length: int | None = truncation["max_length"] if truncation else None
        """The truncation length tokenizer.json itself sets (None when it sets none)."""
        self.configured_pad_id: int | None = padding["pad_id"] if padding else None
        """The pad id tokenizer.json itself sets (None when it does not pad)."""
        for tokenizer in (truncating, whole):
            tokenizer.no_padding()
        truncating.enable_truncation(max_length=max_length)
        whole.no_truncation()
        self._truncating, self._whole = truncating, whole
        self.max_length = max_length
        self.pad_id = pad_id
        self.vocab_size = truncating.get_vocab_size(with_added_tokens=True)

    def encode(self, texts: Sequence[str], pad_to: int | None = None) -> Encoded:
        """Ids of every text, each cut to `max_length` tokens the tokenizer's way (the first
        tokens kept, specials re-added), padded to `pad_to` (default: the longest text); a text
        that yields no token but specials is refused."""
        texts = check_texts(texts)
        encodings = self._truncating.encode_batch(list(texts))
        truncated = []
        lengths = []
        for index, encoding in enumerate(encodings):
            if not any(mask == 0 for mask in encoding.special_tokens_mask):
                raise InputError(f"text {index} is empty (no tokens after normalisation)")
            lengths.append(len(encoding.ids))
            if encoding.overflowing:
                full = len(self._whole.encode(texts[index]).ids)
                truncated.append(Truncation(index, full, len(encoding.ids)))
        ids = np.full((len(texts), pad_to or max(lengths)), self.pad_id, dtype=np.int32)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
        return Encoded(ids, tuple(lengths), tuple(truncated))


def check_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list of str: at least one, at most MAX_TEXTS, each valid Unicode that
    encodes as UTF-8 (a lone surrogate, as undecodable command-line bytes become, is refused)
    and not blank."""
    if isinstance(texts, str | bytes):
        raise InputError("texts must be a list of strings, not one string")
    items = list(texts)
    if not items:
        raise InputError("no text given")
    if len(items) > MAX_TEXTS:
        raise InputError(f"{len(items)} texts exceed the limit of {MAX_TEXTS} a call")
    for index, text in enumerate(items):
        if not isinstance(text, str):
            raise InputError(f"text {index} is {type(text).__name__}, not a string")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(
                f"text {index} is not valid UTF-8 (undecodable byte at character {exc.start})"
            ) from None
        if not text.strip():
            raise InputError(f"text {index} is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise InputError(f"text {index} has {len(text)} characters, more than {MAX_TEXT_CHARS}")
    return items


def read_text_lines(path: str | Path) -> list[str]:
    """One text per line of a UTF-8 file (a trailing newline ends the last line; `\\r\\n` is a
    line end). Undecodable bytes and empty lines are refused naming the line."""
    source = Path(path)
    if not source.is_file():
        raise InputError(f"text file not found: {source}")
    data = source.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"text file {source} is not valid UTF-8 (byte 0x{data[exc.start]:02x} on line {line})"
        ) from None
    text = text.removeprefix("\ufeff")
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    if not lines:
        raise InputError(f"text file {source} is empty")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise InputError(f"text file {source} line {number} is empty")
    return lines


# -- text models: a package with a committed tokenizer ------------------------------------------

TOKENIZER_FORMAT = "huggingface-tokenizers/1"
"""How `metadata.text.tokenizer` is applied: `tokenizers.Tokenizer.from_str` of the committed
bytes, truncation to `max_length` (longest first: the first tokens are kept, specials re-added),
no padding of its own, then `pad_id` up to the package's input length."""
EMBED_BATCH = 32
"""Texts run through the package at once (bounds memory: 32 x 12 heads x 128^2 scores)."""


@dataclass(frozen=True)
class Embeddings:
    """Embeddings of texts by a text package, one row per text, with what was committed.

    `vectors` float32 [N, D] = `values` x the output scale; `values` are the integer outputs
    (int32 [N, D]); `ids` the committed inputs (int32 [N, L], padded); `truncated` each text that
    was cut to the package's length."""

    version_id: bytes
    vectors: np.ndarray
    values: np.ndarray
    ids: np.ndarray
    truncated: tuple[Truncation, ...]


class TextModel:
    """A verified package whose input is token ids and whose manifest commits a tokenizer."""

    def __init__(self, package: ModelPackage) -> None:
        text = package.manifest["metadata"].get("text")
        if not isinstance(text, dict) or package.input_dtype != "int32":
            raise InputError(
                "this package is not a text model (its input is not token ids with a tokenizer)"
            )
        try:
            spec = text["tokenizer"]
            if spec["format"] != TOKENIZER_FORMAT:
                raise PackageError(f"unknown tokenizer format {spec['format']!r}")
            rows = package.tensors[spec["tensor"]]
            size = int(spec["bytes"])
            max_length, pad_id = int(text["max_length"]), int(text["pad_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PackageError(f"malformed metadata.text in the manifest: {exc!r}") from None
        data = rows.tobytes()
        if rows.dtype != np.int8 or not 0 < size <= len(data) or any(data[size:]):
            raise PackageError("the tokenizer tensor does not hold metadata.text.tokenizer.bytes")
        tokenizer_json = data[:size]
        if "0x" + keccak256(tokenizer_json).hex() != spec.get("keccak256"):
            raise PackageError("the tokenizer tensor does not match its keccak256 in the manifest")
        if list(package.input_shape) != [max_length]:
            raise PackageError(
                f"metadata.text.max_length {max_length} differs from the input shape "
                f"{list(package.input_shape)}"
            )
        self.package = package
        self.tokenizer = TextTokenizer(tokenizer_json, max_length, pad_id)

    def encode(self, texts: Sequence[str]) -> Encoded:
        """Token ids [N, max_length] (the committed input) of the texts."""
        return self.tokenizer.encode(texts, pad_to=self.tokenizer.max_length)

    def embed(self, texts: Sequence[str]) -> Embeddings:
        """Run the exact integer model on every text (EMBED_BATCH at a time); a text embeds to
        the same bytes alone or in any batch (padding is masked exactly)."""
        encoded = self.encode(texts)
        values = np.concatenate(
            [
                self.package.run(encoded.ids[start : start + EMBED_BATCH])
                for start in range(0, len(encoded.ids), EMBED_BATCH)
            ]
        )
        return Embeddings(
            version_id=self.package.version_id,
            vectors=self.package.dequantize_output(values),
            values=values,
            ids=encoded.ids,
            truncated=encoded.truncated,
        )

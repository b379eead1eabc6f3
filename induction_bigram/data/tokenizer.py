"""A character tokenizer for TransformerLens, built in-process from a vocabulary.

TransformerLens's string tools (``to_tokens``, ``to_str_tokens``, ``to_string``,
``to_single_token``, ``utils.test_prompt``, ``head_detector.detect_head``, ``generate`` on a
string) all go through ``model.tokenizer``, a Hugging Face tokenizer. This one is a
``transformers.PreTrainedTokenizerFast`` over a ``tokenizers`` BPE model with no merges: every
character of the vocabulary is one token, and token id i is ``vocab[i]``, exactly as
:meth:`BigramStats.encode` numbers them. Nothing is downloaded.

The special tokens (:data:`SPECIAL_TOKENS`) take the ids just past the vocabulary, N .. N+3, so
none of them shifts a character's id. The model has no embedding for them: feeding one to the
model is an error (:func:`induction_bigram.model.components.checks.check_token_ids`), which is what makes
an unknown character, or a BOS asked for with ``prepend_bos=True``, fail loudly instead of
being read as some other token. The tokenizer does not prepend BOS.

TransformerLens's ``to_tokens`` (and so ``to_str_tokens`` and ``model("...")``) asks the
tokenizer to cut a prompt to ``n_ctx`` tokens; this one refuses a prompt that such a cut would
change, with a :class:`~induction_bigram.errors.DataError`, as a token tensor of that length is.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast

from induction_bigram.errors import DataError

BOS, EOS, PAD, UNK = "<|bos|>", "<|eos|>", "<|pad|>", "<|unk|>"
SPECIAL_TOKENS = (BOS, EOS, PAD, UNK)


def character_tokenizer(vocab: Sequence[str]) -> PreTrainedTokenizerFast:
    """One token per character of ``vocab`` (id i = ``vocab[i]``), specials at N .. N+3."""
    if len(vocab) < 2 or len(set(vocab)) != len(vocab) or any(len(c) != 1 for c in vocab):
        raise DataError(f"a character vocabulary needs at least 2 distinct single characters, got {list(vocab)!r}")
    ids = {char: i for i, char in enumerate(vocab)}
    ids |= {token: len(vocab) + k for k, token in enumerate(SPECIAL_TOKENS)}
    backend = Tokenizer(models.BPE(vocab=ids, merges=[], unk_token=UNK))
    backend.decoder = decoders.Fuse()  # characters join with nothing between them
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer = _CharacterTokenizer(
        tokenizer_object=backend,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        clean_up_tokenization_spaces=False,  # " ." must stay " ."
        model_max_length=10**9,
    )
    # BOS is set after construction: a tokenizer with a BOS but no add_bos_token makes
    # TransformerLens's set_tokenizer reload it from the hub by name.
    return tokenizer


class _CharacterTokenizer(PreTrainedTokenizerFast):
    def __call__(self, text=None, *args, **kwargs):
        max_length = kwargs.get("max_length")
        if kwargs.get("truncation") and max_length is not None:
            for prompt in [text] if isinstance(text, str) else text if isinstance(text, (list, tuple)) else []:
                if isinstance(prompt, str) and len(prompt) > max_length:  # characters bound the tokens from above
                    n = len(self.tokenize(prompt))  # not the backend's encode, which keeps the last call's cut
                    if n > max_length:
                        raise DataError(
                            f"a prompt of length {n} exceeds the context n_ctx = {max_length} "
                            "(TransformerLens would cut it to n_ctx); pass a shorter prompt"
                        )
        return super().__call__(text, *args, **kwargs)


def special_token_note(d_vocab: int) -> str:
    """What the ids just past a vocabulary of ``d_vocab`` characters are, for error messages."""
    names = ", ".join(f"{d_vocab + k} {token}" for k, token in enumerate(SPECIAL_TOKENS))
    return f"ids {d_vocab}.. are the tokenizer's special tokens ({names}: {UNK} is a character outside the vocabulary)"

"""Model construction and weight access, in one package, so nothing else knows which backend runs.

- :mod:`.backend`: :data:`Model`, the TL model class every other module names, and the
  trained parameters by TL 3 name;
- :mod:`.access`: what both backends share (device, config, embeddings, vocabulary, checks);
- :mod:`.circuit`: the two-layer attention model of docs/THEORY.md section 2
  (:func:`build_model`), the paper's matrix convention and our state-dict loader;
- :mod:`.initial`: that model's initial weights, by TL 3 name, which both backends load;
- :mod:`.encodings`: the positional encodings, one module each, and their registry;
- :mod:`.components`: our TL components (attention, feed-forward, input checks; TL 4's native parts);
- :mod:`.standard`: a standard TransformerLens model (several heads, LayerNorm, learned
  embeddings, TL's own initialisation) for next-character prediction on plain text
  (:func:`build_standard_model`);
- :mod:`.tl4`, :mod:`.tl4_weights`: the same models as ``TransformerBridge`` under TL 4.
"""

from induction_bigram.model.access import (
    CONFIG_BUFFERS,
    MARKER_KEY,
    check_tokens,
    check_vocabulary,
    describe,
    ffn_reads_token,
    model_config,
    model_vocab,
    norm_parameters,
    positional_embeddings,
    resolve_device,
    swap_convention,
    token_embeddings,
    trainable_names,
    unembeddings,
)
from induction_bigram.model.backend import (
    TL4,
    TL_VERSION,
    Model,
    load_optimizer_state,
    portable_optimizer_state,
    tl3_parameters,
    trainable_parameters,
)

if TL4:  # TransformerLens >= 4: a TransformerBridge built by model/tl4.py
    from induction_bigram.model.tl4 import (
        build_model,
        build_standard_model,
        get_paper_matrix,
        relative_position_bias,
        rotate_layer1,
        scores_module,
        set_paper_matrix,
        standard_config,
    )
    from induction_bigram.model.tl4_weights import load_weights, portable_state_dict
else:
    from induction_bigram.model.circuit import (
        build_model,
        get_paper_matrix,
        load_weights,
        portable_state_dict,
        relative_position_bias,
        rotate_layer1,
        scores_module,
        set_paper_matrix,
    )
    from induction_bigram.model.standard import build_standard_model, standard_config

__all__ = [
    "CONFIG_BUFFERS",
    "MARKER_KEY",
    "Model",
    "TL_VERSION",
    "build_model",
    "build_standard_model",
    "check_tokens",
    "check_vocabulary",
    "describe",
    "ffn_reads_token",
    "get_paper_matrix",
    "load_optimizer_state",
    "load_weights",
    "model_config",
    "model_vocab",
    "standard_config",
    "norm_parameters",
    "portable_optimizer_state",
    "portable_state_dict",
    "positional_embeddings",
    "relative_position_bias",
    "rotate_layer1",
    "resolve_device",
    "scores_module",
    "set_paper_matrix",
    "swap_convention",
    "token_embeddings",
    "trainable_names",
    "tl3_parameters",
    "trainable_parameters",
    "unembeddings",
]

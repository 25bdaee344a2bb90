"""Random-init Qwen2-shaped models with a byte-level tokenizer: tests, benchmarks, smoke runs.

Nothing is downloaded. The tokenizer is a small BPE trained on the bundled problems, so
token counts look like real data; the model's vocabulary can be set larger than the
tokenizer's (as a real 151k-token model has) without changing what the tokenizer emits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..sources import SAMPLE_PATH

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def make_tokenizer(vocab_size: int = 512, chat_template: bool = True) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    corpus = SAMPLE_PATH.read_text(encoding="utf-8").splitlines()
    tok.train_from_iterator(
        ["Please critique whether the solution is correct. Conclusion: right wrong [END]", *corpus], trainer
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def make_model(
    path: Path,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int | None = None,
    vocab_size: int | None = None,
    tokenizer_vocab: int = 512,
) -> Path:
    """Save a random Qwen2-shaped model and its tokenizer to `path`; returns `path`."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = make_tokenizer(tokenizer_vocab)
    config = Qwen2Config(
        vocab_size=max(vocab_size or 0, len(tokenizer)),
        hidden_size=hidden,
        intermediate_size=intermediate or hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path

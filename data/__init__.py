"""The data every stage reads: labelled text tasks (offline first), the tokenizer, and SQuAD.

A leaf: it imports only `common` (errors, files) and third-party libraries, so the model, the trainer, export and
run all read the same samples. `data.squad` is imported by name; the rest is re-exported here.
"""

from data.tasks import SPLITS, TaskData, list_tasks, load_task, package_file, split_of
from data.tokenizers import (
    BERT_UNCASED_VOCAB, SHIPPED_TOKENIZER, TokenizerChoice, check_vocabulary, choose_tokenizer, default_vocab, encode,
    get_tokenizer, save_tokenizer, tokenizer_file, tokenizer_for_model,
)

__all__ = ["SPLITS", "TaskData", "list_tasks", "load_task", "package_file", "split_of", "BERT_UNCASED_VOCAB",
           "SHIPPED_TOKENIZER", "TokenizerChoice", "check_vocabulary", "choose_tokenizer", "default_vocab", "encode",
           "get_tokenizer", "save_tokenizer", "tokenizer_file", "tokenizer_for_model"]

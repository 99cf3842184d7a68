"""Language models beyond next-token prediction (issue 24): a BERT-style encoder pre-trained by
masked language modelling and fine-tuned to classify passages (bert.py; its tokenizer and
networks: bert_networks.py; its tools and exports: bert_tools.py), sequence-to-sequence translation with attention (seq2seq.py: a GRU
encoder-decoder and a transformers encoder-decoder), and word embeddings you can explore
(word2vec.py, with the explorer of embeddings.py). Each pipeline is declared, torch-free, in
its own spec module (bert_spec.py, seq2seq_spec.py, word2vec_spec.py); the data they read is
pipelines/data/language.py (word2vec: the text data sets)."""

from ..core.spec import lazy_exports

__getattr__ = lazy_exports(__name__, {
    "BERT": ".bert", "BertPipelineConfig": ".bert_spec",
    "Seq2Seq": ".seq2seq", "GRUSeq2Seq": ".seq2seq", "TransformerSeq2Seq": ".seq2seq",
    "Seq2SeqConfig": ".seq2seq_spec", "GRUSeq2SeqConfig": ".seq2seq_spec",
    "TransformerSeq2SeqConfig": ".seq2seq_spec",
    "Word2Vec": ".word2vec", "Word2VecConfig": ".word2vec_spec"})

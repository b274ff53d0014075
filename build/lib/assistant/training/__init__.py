"""Fine-tuning: training examples from the store, token batches, the training loop, saving the tuned model.
Builds on `assistant.model` and `assistant.data`; the command is `python -m assistant.finetune`.
"""

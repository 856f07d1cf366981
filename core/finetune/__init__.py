"""LoRA fine-tuning: dataset checks, job specs, a one-at-a-time job runner (each job in its own process), Unsloth /
PEFT+TRL trainers, exports (PEFT, GGUF LoRA, merged GGUF, Ollama Modelfile) and an export parity check.

Nothing here imports torch/transformers/unsloth at module import time: the heavy libraries load inside functions
(and Unsloth only inside the worker process)."""

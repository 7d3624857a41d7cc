"""Reasoning backends behind the `Reasoner` protocol of `lantern.loop.reason`.

- `ouro`: Lantern's native LoopLM runtime (DEEP mode, exit step per token, a yes/no judge);
- `hf`: any local transformers causal-LM folder, streamed through transformers' own streamer;
- `openai_chat`: any OpenAI-compatible chat endpoint over HTTP (SSE streaming, native tool calls);
- `text_stream`: sorts a model's raw text into answer, thinking and tool requests, for all three.

Each backend knows its model and wire format, nothing about retrieval or verification.
"""

"""Tables and charts of the Fine-Tune page, shaped here so the page only lays them out (no streamlit here)."""
from __future__ import annotations

import time


def loss_rows(metrics: list[dict]) -> tuple[list[dict], list[dict]]:
    """(rows with a train loss, rows with an eval loss) of a run's metrics.jsonl."""
    return ([m for m in metrics if m.get("loss") is not None], [m for m in metrics if m.get("eval_loss") is not None])


def headline(status: dict, metrics: list[dict]) -> dict:
    """The five numbers shown above the curve, formatted: train loss (+ change), eval loss, tokens/s, RSS, lr."""
    train, evals = loss_rows(metrics)
    last = train[-1] if train else {}
    rss = status.get("rss_mb") or (metrics[-1].get("rss_mb") if metrics else 0) or 0
    return {"train_loss": f"{last['loss']:.3f}" if train else "–",
            "train_delta": f"{train[-1]['loss'] - train[0]['loss']:.3f}" if len(train) > 1 else None,
            "eval_loss": f"{evals[-1]['eval_loss']:.3f}" if evals else "–",
            "tokens_per_s": f"{last['tokens_per_s']:.0f}" if last.get("tokens_per_s") else "–",
            "rss": f"{rss:.0f} MB",
            "lr": f"{last['learning_rate']:.2e}" if last.get("learning_rate") is not None else "–"}


def step_text(status: dict, active: bool) -> str:
    step, total = int(status.get("step") or 0), int(status.get("max_steps") or 0)
    eta = status.get("eta_s")
    text = f"Step {step}/{total}"
    if active and status.get("state") == "running" and eta:
        text += f" · ETA {fmt_s(eta)}"
    if status.get("seconds_per_step"):
        text += f" · {status['seconds_per_step']:.2f} s/step"
    return text


def fmt_s(sec) -> str:
    if sec is None:
        return "–"
    sec = int(sec)
    return f"{sec // 60} min {sec % 60:02d} s" if sec >= 60 else f"{sec} s"


def curves_figure(runs: list, height: int = 320):
    """Train (solid) and eval (dashed) loss per step of one or more runs (finetune.runner.Run) overlaid."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for run in runs:
        train, evals = loss_rows(run.metrics)
        label = run.status.get("name") or run.run_id
        suffix = f" · {label}" if len(runs) > 1 else ""
        if train:
            fig.add_trace(go.Scatter(x=[m["step"] for m in train], y=[m["loss"] for m in train], mode="lines+markers",
                                     name=f"train loss{suffix}", marker={"size": 4}))
        if evals:
            fig.add_trace(go.Scatter(x=[m["step"] for m in evals], y=[m["eval_loss"] for m in evals],
                                     mode="lines+markers", name=f"eval loss{suffix}", line={"dash": "dash"},
                                     marker={"size": 7}))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_title="step",
                      yaxis_title="loss", legend={"orientation": "h", "y": -0.25})
    return fig


def run_rows(runs: list, icons: dict) -> list[dict]:
    """The Runs table: one row per run with its final metrics."""
    rows = []
    for r in runs:
        final = r.status.get("final") or {}
        rows.append({
            "run": r.run_id, "name": r.status.get("name"), "state": f"{icons.get(r.state, '')} {r.state}",
            "method": final.get("method") or r.status.get("method") or (r.spec or {}).get("method") or "lora",
            "trainer": r.status.get("trainer"), "steps": f"{r.status.get('step')}/{r.status.get('max_steps')}",
            "first loss": final.get("first_loss"), "last loss": final.get("last_loss"),
            "eval loss": final.get("eval_loss"), "train s": final.get("train_seconds"),
            "s/step": final.get("seconds_per_step"), "peak MB": final.get("peak_rss_mb"),
            "artifact MB": round(final["artifact_bytes"] / 1e6, 1) if final.get("artifact_bytes") else None,
            "adapter sha256": (final.get("adapter_sha256") or "")[:12],
            "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.status.get("created") or 0)),
        })
    return rows


def mb(n) -> str:
    return f"{n / 1e6:,.1f} MB" if isinstance(n, (int, float)) and n else "–"


def run_card(final: dict, method: str | None = None, data_variant: str | None = None) -> list[dict]:
    """The measured facts of a finished run that the full-vs-LoRA comparison is about, one row each:
    method, trainable parameters, peak memory, s/step, artifact size on disk, llama.cpp load time, held-out loss."""
    method = final.get("method") or method or "lora"
    tp, total = final.get("trainable_params"), final.get("total_params")
    params = (f"{tp:,} of {total:,} ({100 * tp / total:.2f}%)" if tp and total else "–")
    artifact = "whole model (safetensors)" if method == "full" else "PEFT adapter (safetensors)"
    gguf = "standalone GGUF" if method == "full" else "GGUF LoRA (+ the shared base GGUF)"
    heldout = final.get("heldout_loss")
    rows = [
        {"measure": "method", "value": "full fine-tune (every weight)" if method == "full" else method,
         "how": final.get("library") or ""},
        {"measure": "training data", "value": data_variant or "plain transcripts",
         "how": "raft = retrieval-augmented rows with cited answers; plain = the transcripts (leaking rows dropped)"},
        {"measure": "trainable parameters", "value": params, "how": "parameters with requires_grad, tied counted once"},
        {"measure": "peak memory", "value": f"{final['peak_rss_mb']:,.0f} MB" if final.get("peak_rss_mb") else "–",
         "how": "RSS high-water mark of the training process (getrusage)"},
        {"measure": "seconds per step", "value": f"{final['seconds_per_step']:.2f} s" if final.get("seconds_per_step")
         else "–", "how": f"{final.get('steps')} steps in {final.get('train_seconds')} s (loading excluded)"},
        {"measure": "artifact on disk", "value": mb(final.get("artifact_bytes")), "how": artifact},
        {"measure": "GGUF on disk", "value": mb(final.get("gguf_bytes")), "how": gguf},
        {"measure": "load time (llama.cpp)",
         "value": f"{final['load_seconds']:.2f} s" if isinstance(final.get("load_seconds"), (int, float)) else "–",
         "how": "Llama(...) of the GGUF " + ("alone" if method == "full" else "base + lora_path")},
        {"measure": "held-out loss", "value": f"{heldout:.3f}" if isinstance(heldout, (int, float)) else "–",
         "how": f"answer-token loss on {final.get('heldout_rows') or 0} held-out transcripts after training"},
        {"measure": "voice checks (llama.cpp)",
         "value": f"{final['voice_passed']}/{final['voice_total']}" if final.get("voice_total") else "–",
         "how": f"brand-voice checks passed by the GGUF's answers to {final.get('voice_prompts') or 0} held-out "
                "questions (T=0.2, seed 42)"},
        {"measure": "eval loss", "value": f"{final['eval_loss']:.3f}" if isinstance(final.get("eval_loss"), (int, float))
         else "–", "how": f"validation split ({final.get('val_rows') or 0} rows)"},
    ]
    return rows


def parity_rows(report: dict) -> list[dict]:
    return [{"prompt": r["prompt"], "in-process (PEFT)": r["in_process"], "exported (llama.cpp)": r["exported"],
             "similarity": r["similarity"], "base without adapter": r["base"], "base similarity": r["base_similarity"]}
            for r in report["rows"]]

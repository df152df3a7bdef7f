"""Questions in the page: sent to the service's answer queue, then followed until answered.

Streamlit reruns the script on every click and keystroke, so the script run must not produce
answers: the service's worker answers each question as a job, in order, whatever the page does.
The page only follows its jobs: a fragment polls them and redraws one status element per pending
answer (its place in the queue, then "Searching…", then the text so far), and when one finishes
the whole page reruns to show it from the conversation store like every saved answer. A rerun,
a reload or a closed tab never cancels a question; only Stop (or Cancel while waiting) does.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from app.chat import current_chat, open_chat
from app.markdown import safe_markdown
from folio.service import AnswerJob, AskRequest, FolioService
from retrieval.chain import Token
from retrieval.injection import strip_scaffolding

POLL_S = 0.4  # how often a pending answer is redrawn: tokens arrive as a few words at a time
STOP_WAIT_S = 3.0  # Stop waits this long for the job to end, so the page shows the kept text


def submit(service: FolioService, question: str, options: dict[str, Any]) -> AnswerJob:
    """Queue a question in the open conversation (a new one gets its id now, from the job)."""
    state = st.session_state
    chat_id = current_chat()
    request = AskRequest(
        question, collection=state.collection, chat=chat_id, new_chat=chat_id is None, **options
    )
    job = service.submit(request)
    if chat_id is None:
        open_chat(job.chat)
    # Questions this session sent and that ended without a saved answer (an error, cancelled
    # while waiting) stay listed until the next question.
    kept = [j for j in state.get("my_jobs", []) if (old := service.job(j)) and not old.finished]
    state.my_jobs = [*kept, job.id]
    return job


def snapshot(service: FolioService, chat_id: str | None) -> tuple[list[str], list[AnswerJob]]:
    """(ids of the conversation's pending questions, this session's ended unsaved ones).

    Taken before the transcript is read: a job that is done by now has already saved its
    answer (the worker saves before it reports done), so nothing shows twice or not at all."""
    if chat_id is None:
        return [], []
    active = [job.id for job in service.chat_jobs(chat_id)]
    ended = []
    for job_id in st.session_state.get("my_jobs", []):
        job = service.job(job_id)
        if job is not None and job.chat == chat_id and job.finished and not _saved(job):
            ended.append(job)
    return active, ended


def _saved(job: AnswerJob) -> bool:
    answer = job.answer
    return (
        job.state == "done"
        and answer is not None
        and not (answer.stopped and not answer.answer.strip())
    )


def show_ended(jobs: list[AnswerJob]) -> None:
    for job in jobs:
        with st.chat_message("user"):
            st.text(job.request.question)
        with st.chat_message("assistant"):
            if job.error is not None:
                st.error(f"Could not answer: {job.error.message}")
            elif job.state == "cancelled":
                st.caption("Cancelled before it was answered.")
            else:
                st.caption("Stopped before the answer began.")


@st.fragment(run_every=POLL_S)
def follow(service: FolioService, job_ids: tuple[str, ...]) -> None:
    """Redraw the pending answers; when one has finished, rerun the page to show it saved."""
    jobs = [service.job(job_id) for job_id in job_ids]
    if any(job is None or job.finished for job in jobs):
        st.rerun()
    for job in jobs:
        assert job is not None
        _pending(job)


def _pending(job: AnswerJob) -> None:
    with st.chat_message("user"):
        st.text(job.request.question)
    with st.chat_message("assistant"):
        position = job.position
        if job.state == "queued" and position:
            noun = "answer" if position == 1 else "answers"
            st.info(f"Waiting: {position} {noun} ahead of yours", icon=":material/schedule:")
            if st.button("Cancel", key=f"cancel-{job.id}", icon=":material/close:",
                         help="Take this question out of the queue"):  # fmt: skip
                job.cancel()
                st.rerun()
            return
        # As the finished answer will read: without our source delimiters the model echoes.
        text = strip_scaffolding("".join(e.text for e in list(job.events) if isinstance(e, Token)))
        if job.cancel_event.is_set():
            st.caption("Stopping…")
        elif not text:
            st.caption("Searching…")
        if text:
            # Rendered as the finished answer will be (safe Markdown: no HTML, no links yet).
            st.html(f'<div class="folio-answer folio-streaming">{safe_markdown(text)}</div>')
        if st.button("Stop", key=f"stop-{job.id}", icon=":material/stop_circle:",
                     help="End this answer now; what it has said so far is kept"):  # fmt: skip
            job.cancel()
            deadline = time.monotonic() + STOP_WAIT_S
            while not job.finished and time.monotonic() < deadline:
                time.sleep(0.05)
            st.rerun()

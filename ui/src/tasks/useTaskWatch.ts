// Live task status through TaskService.WatchTask (a server stream): the current state at once,
// then every change until a terminal state. No polling: when a stream breaks, it reconnects
// with backoff and the first message brings the state up to date again.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { useEffect, useState } from "react";
import type { Api } from "../api/client";
import type { Task } from "../gen/pixelflow/v1/task_pb";
import { TaskStatus } from "../gen/pixelflow/v1/task_pb";
import { isTerminal } from "./status";
import { watchGate } from "./streamGate";

export type WatchState = "idle" | "queued" | "live" | "reconnecting" | "gone";

const MAX_BACKOFF_MS = 15_000;

export function useTaskWatch(api: Api, initial: Task): { task: Task; state: WatchState } {
  const [task, setTask] = useState(initial);
  const [state, setState] = useState<WatchState>(isTerminal(initial.status) ? "idle" : "queued");

  // A newer copy from the parent (a reloaded list) replaces ours only if it is not older.
  useEffect(() => {
    setTask((current) => (newer(initial, current) ? initial : current));
  }, [initial]);

  const taskId = initial.id;
  const startTerminal = isTerminal(initial.status);
  useEffect(() => {
    if (startTerminal) return;
    const controller = new AbortController();
    const { signal } = controller;
    // Processing tasks first, then the oldest: they are the ones about to change.
    const priority =
      (initial.status === TaskStatus.PROCESSING ? 0 : 1e13) + (initial.createdAt ? timestampMs(initial.createdAt) : 0);

    void (async () => {
      let release: (() => void) | undefined;
      try {
        setState("queued");
        release = await watchGate.acquire(priority, signal);
        let backoff = 500;
        while (!signal.aborted) {
          let last: Task | undefined;
          try {
            setState("live");
            for await (const message of api.tasks.watchTask({ taskId }, { signal })) {
              if (!message.task) continue;
              last = message.task;
              setTask(message.task);
              backoff = 500;
            }
            if (last && isTerminal(last.status)) break;
          } catch (error) {
            if (signal.aborted) break;
            const code = ConnectError.from(error).code;
            if (code === Code.NotFound || code === Code.PermissionDenied) {
              setState("gone");
              return;
            }
            if (code === Code.Unauthenticated && !api.session.active) return;
            if (last && isTerminal(last.status)) break;
          }
          setState("reconnecting");
          await sleep(backoff, signal);
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        }
        if (!signal.aborted) setState("idle");
      } catch {
        // aborted while waiting for a slot or sleeping
      } finally {
        release?.();
      }
    })();
    return () => controller.abort();
    // initial.status/createdAt only set the priority of the first connection.
  }, [api, taskId, startTerminal]);

  return { task, state };
}

function newer(candidate: Task, current: Task): boolean {
  if (candidate.id !== current.id) return true;
  const a = candidate.updatedAt ? timestampMs(candidate.updatedAt) : 0;
  const b = current.updatedAt ? timestampMs(current.updatedAt) : 0;
  return a >= b;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

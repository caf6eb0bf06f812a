// Pick or drop one image file. The size limit (from /config.json) is checked here, before anything is uploaded.
import type { DragEvent } from "react";
import { useId, useState } from "react";
import { formatBytes } from "../lib/format";
import { UploadIcon, XIcon } from "./icons";
import { FOCUS_RING } from "./ui";

export const ACCEPTED_TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff", "image/bmp", "image/avif"];

/** Why this file cannot be uploaded, or null. */
export function checkFile(file: { name: string; size: number; type: string }, maxBytes: number): string | null {
  if (file.size === 0) return `${file.name} is empty.`;
  if (file.size > maxBytes) {
    return `${file.name} is ${formatBytes(file.size)}; the limit is ${formatBytes(maxBytes)}.`;
  }
  // The server sniffs the real type; this only catches obvious mistakes (a PDF, a text file).
  if (file.type && !file.type.startsWith("image/")) {
    return `${file.name} is not an image (JPEG, PNG, WebP, GIF, TIFF, BMP or AVIF).`;
  }
  return null;
}

interface Props {
  file: File | null;
  previewUrl: string | null;
  error: string | null;
  /** The upload limit, shown in the drop zone. */
  maxBytes: number;
  onFile(file: File | null): void;
}

export function Dropzone({ file, previewUrl, error, maxBytes, onFile }: Props) {
  const id = useId();
  const [dragging, setDragging] = useState(false);

  function onDrop(event: DragEvent) {
    event.preventDefault();
    setDragging(false);
    const dropped = event.dataTransfer.files[0];
    if (dropped) onFile(dropped);
  }

  if (file && previewUrl) {
    return (
      <div className="flex flex-col gap-4 rounded-lg bg-slate-50 p-3 ring-1 ring-slate-200 sm:flex-row sm:items-center">
        <div className="checkerboard relative h-40 w-full shrink-0 overflow-hidden rounded-md ring-1 ring-slate-200 sm:h-28 sm:w-40">
          <div className="absolute inset-0 flex items-center justify-center">
            <img src={previewUrl} alt={`Preview of ${file.name}`} className="max-h-full max-w-full object-contain" data-testid="upload-preview" />
          </div>
        </div>
        <div className="min-w-0 flex-1">
          <p className="truncate text-sm font-medium text-slate-900">{file.name}</p>
          <p className="text-xs text-slate-500">
            {formatBytes(file.size)}
            {file.type && ` · ${file.type}`}
          </p>
          <button
            type="button"
            onClick={() => onFile(null)}
            className={`mt-2 inline-flex items-center gap-1 rounded-md text-sm font-medium text-slate-600 hover:text-red-600 ${FOCUS_RING}`}
          >
            <XIcon className="h-4 w-4" /> Remove file
          </button>
        </div>
      </div>
    );
  }

  return (
    <div>
      <label
        htmlFor={id}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
        className={`flex cursor-pointer flex-col items-center justify-center rounded-lg border-2 border-dashed px-4 py-8 text-center transition-colors focus-within:border-indigo-500 focus-within:bg-indigo-50/50 ${
          dragging ? "border-indigo-500 bg-indigo-50" : error ? "border-red-300 bg-red-50/40" : "border-slate-300 hover:border-indigo-400 hover:bg-slate-50"
        }`}
      >
        <UploadIcon className="h-8 w-8 text-slate-400" />
        <span className="mt-2 text-sm font-semibold text-indigo-600">Choose an image</span>
        <span className="text-sm text-slate-500">or drag and drop it here</span>
        <span className="mt-1 text-xs text-slate-400">JPEG, PNG, WebP, GIF, TIFF, BMP or AVIF · up to {formatBytes(maxBytes)}</span>
        <input
          id={id}
          type="file"
          accept={ACCEPTED_TYPES.join(",")}
          className="sr-only"
          aria-label="Image file"
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `${id}-error` : undefined}
          onChange={(e) => {
            onFile(e.target.files?.[0] ?? null);
            e.target.value = "";
          }}
        />
      </label>
      {error && (
        <p id={`${id}-error`} role="alert" className="mt-2 text-sm font-medium text-red-600">
          {error}
        </p>
      )}
    </div>
  );
}

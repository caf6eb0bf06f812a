// Local previews of uploaded files, kept in memory for this page's life so a task view can
// show the original next to the result (the API never sends uploaded bytes back).
const previews = new Map<string, { url: string; filename: string }>();

export function rememberPreview(taskId: string, file: Blob, filename: string): void {
  previews.set(taskId, { url: URL.createObjectURL(file), filename });
}

export function previewFor(taskId: string): { url: string; filename: string } | undefined {
  return previews.get(taskId);
}

export function forgetPreview(taskId: string): void {
  const preview = previews.get(taskId);
  if (preview) URL.revokeObjectURL(preview.url);
  previews.delete(taskId);
}

export function forgetAllPreviews(): void {
  for (const id of [...previews.keys()]) forgetPreview(id);
}

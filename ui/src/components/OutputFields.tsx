// The output options' fields (format, quality, flags), for the new-task page and the presets page.
// Messages come from tasks/draftValidation.ts and are shown next to the field they name.
import type { FieldErrors, FormatName, OutputDraft } from "../tasks/operations";
import { CheckboxField, SelectField, TextField } from "./ui";

interface Props {
  output: OutputDraft;
  errors: FieldErrors;
  onChange(output: OutputDraft): void;
}

export function OutputFields({ output, errors, onChange }: Props) {
  return (
    <>
      <div className="grid grid-cols-1 gap-3 sm:grid-cols-2 lg:grid-cols-3">
        <SelectField label="Format" value={output.format} error={errors.format} onChange={(e) => onChange({ ...output, format: e.target.value as FormatName })}>
          <option value="source">Same as source</option>
          <option value="jpeg">JPEG</option>
          <option value="png">PNG</option>
          <option value="webp">WebP</option>
          <option value="avif">AVIF</option>
          <option value="gif">GIF</option>
          <option value="tiff">TIFF</option>
          <option value="best">Best (smallest of AVIF, WebP, JPEG/PNG)</option>
        </SelectField>
        <TextField
          label="Quality"
          inputMode="numeric"
          placeholder="Default"
          value={output.quality}
          error={errors.quality}
          hint="1–100 for JPEG, WebP and AVIF; empty for the default"
          onChange={(e) => onChange({ ...output, quality: e.target.value })}
        />
      </div>
      <div className="grid grid-cols-1 gap-3 sm:grid-cols-2">
        <CheckboxField label="Lossless" hint="WebP and AVIF (PNG and TIFF always are)." checked={output.lossless} onChange={(e) => onChange({ ...output, lossless: e.target.checked })} />
        <CheckboxField label="Keep metadata" hint="EXIF, XMP and ICC are stripped otherwise." checked={output.keepMetadata} onChange={(e) => onChange({ ...output, keepMetadata: e.target.checked })} />
        <CheckboxField label="Keep colour profile" hint="Colours are converted to sRGB otherwise (CMYK always is)." checked={output.keepColorProfile} onChange={(e) => onChange({ ...output, keepColorProfile: e.target.checked })} />
        <CheckboxField label="First frame only" hint="Animated GIF and WebP stay animated into GIF or WebP otherwise." checked={output.firstFrameOnly} onChange={(e) => onChange({ ...output, firstFrameOnly: e.target.checked })} />
      </div>
      {errors.lossless && (
        <p className="text-sm font-medium text-red-600" role="alert">
          {errors.lossless.charAt(0).toUpperCase() + errors.lossless.slice(1)}
        </p>
      )}
    </>
  );
}

// Outline icons (24px grid, stroke currentColor), inline so there is no icon-font download.
import type { SVGProps } from "react";

function Icon({ d, ...props }: SVGProps<SVGSVGElement> & { d: string }) {
  return (
    <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth={1.8} strokeLinecap="round" strokeLinejoin="round" aria-hidden="true" className="h-5 w-5" {...props}>
      <path d={d} />
    </svg>
  );
}

type P = SVGProps<SVGSVGElement>;
export const PlusIcon = (p: P) => <Icon d="M12 5v14M5 12h14" {...p} />;
export const PhotoIcon = (p: P) => <Icon d="M4 5h16a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1Zm0 11 5-5 4 4 2-2 5 5M15 9.5a1.5 1.5 0 1 0 0-.01" {...p} />;
export const LinkIcon = (p: P) => <Icon d="M10 14a4 4 0 0 0 5.66 0l3-3a4 4 0 0 0-5.66-5.66l-1 1M14 10a4 4 0 0 0-5.66 0l-3 3a4 4 0 0 0 5.66 5.66l1-1" {...p} />;
export const UploadIcon = (p: P) => <Icon d="M12 16V4m0 0-4 4m4-4 4 4M4 16v3a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-3" {...p} />;
export const DownloadIcon = (p: P) => <Icon d="M12 4v12m0 0-4-4m4 4 4-4M4 16v3a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-3" {...p} />;
export const TrashIcon = (p: P) => <Icon d="M4 7h16M10 11v6M14 11v6M6 7l1 12a1 1 0 0 0 1 1h8a1 1 0 0 0 1-1l1-12M9 7V4h6v3" {...p} />;
export const XIcon = (p: P) => <Icon d="M6 6l12 12M18 6 6 18" {...p} />;
export const ArrowUpIcon = (p: P) => <Icon d="M12 19V5m0 0-6 6m6-6 6 6" {...p} />;
export const ArrowDownIcon = (p: P) => <Icon d="M12 5v14m0 0 6-6m-6 6-6-6" {...p} />;
export const ArrowLeftIcon = (p: P) => <Icon d="M19 12H5m0 0 6-6m-6 6 6 6" {...p} />;
export const ServerIcon = (p: P) => <Icon d="M4 5h16v5H4zM4 14h16v5H4zM8 7.5h.01M8 16.5h.01" {...p} />;
export const LayersIcon = (p: P) => <Icon d="M12 4 3 8.5l9 4.5 9-4.5L12 4ZM3 12.5l9 4.5 9-4.5M3 16.5l9 4.5 9-4.5" {...p} />;
export const ListIcon = (p: P) => <Icon d="M8 6h12M8 12h12M8 18h12M4 6h.01M4 12h.01M4 18h.01" {...p} />;
export const LogoutIcon = (p: P) => <Icon d="M15 4h3a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-3M10 16l-4-4 4-4M6 12h10" {...p} />;
export const StopIcon = (p: P) => <Icon d="M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18ZM9 9h6v6H9z" {...p} />;
export const BellIcon = (p: P) => <Icon d="M6 16V11a6 6 0 1 1 12 0v5l1.5 2h-15L6 16ZM10 20a2 2 0 0 0 4 0" {...p} />;
export const CopyIcon = (p: P) => <Icon d="M9 9h10v11H9zM5 15V4h10" {...p} />;
export const RefreshIcon = (p: P) => <Icon d="M20 11a8 8 0 0 0-14.9-3M4 5v3h3M4 13a8 8 0 0 0 14.9 3M20 19v-3h-3" {...p} />;

export function Logo({ className = "h-8 w-8" }: { className?: string }) {
  return (
    <svg viewBox="0 0 32 32" className={className} aria-hidden="true">
      <rect width="32" height="32" rx="8" fill="#4f46e5" />
      <rect x="7" y="7" width="8" height="8" rx="2" fill="#fff" />
      <rect x="17" y="7" width="8" height="8" rx="2" fill="#c7d2fe" />
      <rect x="7" y="17" width="8" height="8" rx="2" fill="#c7d2fe" />
      <rect x="17" y="17" width="8" height="8" rx="2" fill="#fff" opacity=".6" />
    </svg>
  );
}

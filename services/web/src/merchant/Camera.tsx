// The rear camera as a QR reader: BarcodeDetector where the browser has it (with qr_code),
// else jsQR on canvas frames, loaded only now (dynamic import) so the till's bundle does
// not carry it for a scan-gun-only till. The camera stops as soon as a code is read or the
// panel closes.

import { useEffect, useRef, useState } from "preact/hooks";
import { t } from "./i18n";

interface DetectedBarcode {
  rawValue: string;
}
interface BarcodeDetectorLike {
  detect(source: CanvasImageSource): Promise<DetectedBarcode[]>;
}
interface BarcodeDetectorCtor {
  new (options: { formats: string[] }): BarcodeDetectorLike;
  getSupportedFormats?: () => Promise<string[]>;
}

type Detect = (video: HTMLVideoElement) => Promise<string | null>;

async function makeDetector(): Promise<Detect> {
  const Native = (globalThis as { BarcodeDetector?: BarcodeDetectorCtor }).BarcodeDetector;
  if (Native) {
    try {
      const formats = Native.getSupportedFormats ? await Native.getSupportedFormats() : ["qr_code"];
      if (formats.includes("qr_code")) {
        const detector = new Native({ formats: ["qr_code"] });
        return async (video) => {
          const found = await detector.detect(video);
          return found.find((b) => b.rawValue)?.rawValue ?? null;
        };
      }
    } catch {
      // fall through to jsQR
    }
  }
  const { default: jsQR } = await import("jsqr");
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  return async (video) => {
    if (!ctx) return null;
    const scale = Math.min(1, 800 / Math.max(video.videoWidth, video.videoHeight));
    const w = Math.max(1, Math.round(video.videoWidth * scale));
    const h = Math.max(1, Math.round(video.videoHeight * scale));
    canvas.width = w;
    canvas.height = h;
    ctx.drawImage(video, 0, 0, w, h);
    const image = ctx.getImageData(0, 0, w, h);
    return jsQR(image.data, w, h, { inversionAttempts: "dontInvert" })?.data || null;
  };
}

function cameraError(e: unknown): string {
  const name = e instanceof DOMException || e instanceof Error ? e.name : "";
  if (name === "NotAllowedError" || name === "SecurityError") return t("camera.denied");
  if (name === "NotFoundError" || name === "OverconstrainedError") return t("camera.none");
  return t("camera.unavailable", { reason: e instanceof Error ? e.message || name : String(e) });
}

export function Camera(props: { onCode: (code: string) => void; onClose: () => void }) {
  const videoRef = useRef<HTMLVideoElement>(null);
  const closeRef = useRef<HTMLButtonElement>(null);
  const onCode = useRef(props.onCode);
  onCode.current = props.onCode;
  const [ready, setReady] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    closeRef.current?.focus();
    let stopped = false;
    let stream: MediaStream | null = null;
    let timer: number | undefined;
    const stop = () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      stream?.getTracks().forEach((track) => track.stop());
      const video = videoRef.current;
      if (video) video.srcObject = null;
    };
    void (async () => {
      try {
        if (!navigator.mediaDevices?.getUserMedia) {
          throw new DOMException("getUserMedia is not available", "NotFoundError");
        }
        stream = await navigator.mediaDevices.getUserMedia({
          video: { facingMode: { ideal: "environment" } },
          audio: false,
        });
        const video = videoRef.current;
        if (stopped || !video) {
          stop();
          return;
        }
        video.srcObject = stream;
        await video.play().catch(() => undefined);
        const detect = await makeDetector();
        if (stopped) return;
        setReady(true);
        const tick = async () => {
          if (stopped) return;
          if (video.readyState >= 2 && video.videoWidth > 0) {
            const code = await detect(video).catch(() => null);
            if (stopped) return;
            if (code) {
              stop();
              onCode.current(code.trim());
              return;
            }
          }
          timer = window.setTimeout(() => void tick(), 200);
        };
        void tick();
      } catch (e) {
        if (!stopped) setError(cameraError(e));
        stop();
      }
    })();
    return stop;
  }, []);

  return (
    <div
      class="camera"
      role="group"
      aria-labelledby="camera-title"
      onKeyDown={(e) => {
        if (e.key === "Escape") props.onClose();
      }}
    >
      <p id="camera-title" class="camera-title" role="status">
        {error ?? (ready ? t("camera.title") : t("camera.starting"))}
      </p>
      <video
        data-testid="camera-video"
        ref={videoRef}
        class="camera-video"
        muted
        playsInline
        autoPlay
        aria-label={t("camera.title")}
      />
      <button type="button" ref={closeRef} class="btn btn-secondary" onClick={props.onClose}>
        {t("camera.close")}
      </button>
    </div>
  );
}

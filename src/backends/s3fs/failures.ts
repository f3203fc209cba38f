/**
 * What an S3 call's failure means, said once for each way it fails (network, TLS, region,
 * access, a missing bucket), with what to do; a message never carries a secret.
 */
import { backendError, invalid, messageOf, redact, timeout, VolgateError } from "../../errors.ts";
import type { S3Access } from "./access.ts";

interface Failure {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

const NETWORK: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused (is the S3 server running there, on that port?)",
  ECONNRESET: "the connection was reset",
  EPIPE: "the connection was reset",
  ENOTFOUND: "the host name does not resolve (DNS lookup failed)",
  EAI_AGAIN: "the host name does not resolve (DNS lookup failed)",
  EHOSTUNREACH: "no route to host",
  ENETUNREACH: "no route to host",
  ETIMEDOUT: "the connection timed out",
  EPROTO: "the TLS handshake failed (is it an https endpoint?)",
};

const TLS_CODE = /^(CERT_|ERR_TLS_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)/;

/** The one message for each way an S3 call can fail; `what` says which call, for the rare odd cases. */
export function explain(err: unknown, access: S3Access, what: string): VolgateError {
  if (err instanceof VolgateError) return err;
  const e = (err ?? {}) as Failure;
  const where = access.endpoint;
  const status = e.$metadata?.httpStatusCode;
  const code = e.code ?? "";
  const name = e.name ?? "";
  const secrets = [access.secretAccessKey, access.accessKeyId];
  if (NETWORK[code] !== undefined) return backendError(`cannot reach S3 endpoint ${where}: ${NETWORK[code]}`);
  if (TLS_CODE.test(code)) {
    return backendError(
      `cannot reach S3 endpoint ${where}: TLS certificate check failed (${redact(e.message ?? code, secrets)}): volgate always verifies certificates; use a certificate this host trusts`,
    );
  }
  if (name === "TimeoutError" || code === "ECONNABORTED") {
    return timeout(`cannot reach S3 endpoint ${where}: no answer in time`);
  }
  if (status === 301 || name === "PermanentRedirect" || name === "AuthorizationHeaderMalformed") {
    const actual = e.$response?.headers?.["x-amz-bucket-region"];
    return invalid(
      `bucket ${access.bucket} is not in region ${access.region}${actual ? ` (S3 says ${actual})` : ""}: pass -o region=${actual ?? "<its region>"}`,
    );
  }
  if (
    status === 403 ||
    ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden"].includes(name)
  ) {
    const said = name && name !== "Unknown" && name !== "Forbidden" ? ` (${name})` : "";
    return backendError(
      `access denied to bucket ${access.bucket}${said}: check the access key in ${access.keySource}, and that it may use this bucket`,
    );
  }
  if (name === "NoSuchBucket" || (what === "HeadBucket" && (status === 404 || name === "NotFound"))) {
    return invalid(`bucket ${access.bucket} does not exist at ${where}: create it or check -o bucket`);
  }
  const detail = redact(
    `${name && name !== "Unknown" ? `${name}: ` : ""}${e.message ?? messageOf(err)}`,
    secrets,
  );
  return backendError(
    `S3 ${what} on bucket ${access.bucket} at ${where} failed${status ? ` (HTTP ${status})` : ""}: ${detail}`,
  );
}

export const isNotFound = (err: unknown) => {
  const e = err as Failure;
  return e.$metadata?.httpStatusCode === 404 || e.name === "NotFound" || e.name === "NoSuchKey";
};

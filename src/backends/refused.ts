/**
 * Options people try that would hand a volume this host's commands, files, trust or secrets:
 * refused by name (whatever their case), with the reason, before the allow-list says the rest.
 * Anything that looks like a command-line flag is refused too.
 */
import { invalid } from "../errors.ts";
import type { Options } from "./backend.ts";

type Refused = ReadonlyMap<string, string>;

const byName = (reasons: Record<string, string>): Refused =>
  new Map(Object.entries(reasons).map(([k, why]) => [k.toLowerCase(), why]));

const SSH_RUNS = "it runs a command on this host";
const SSH_FILES = "it reads or writes files on this host";
const SSH_OURS = "volgate sets it itself (host keys are always verified; secrets go through credentials)";

export const SSHFS_REFUSED: Refused = byName({
  ssh_command: SSH_RUNS,
  ProxyCommand: SSH_RUNS,
  ProxyJump: SSH_RUNS,
  LocalCommand: SSH_RUNS,
  PermitLocalCommand: SSH_RUNS,
  KnownHostsCommand: SSH_RUNS,
  sftp_server: SSH_RUNS,
  PKCS11Provider: SSH_FILES,
  SecurityKeyProvider: SSH_FILES,
  F: SSH_FILES,
  IdentityFile: SSH_FILES,
  IdentityAgent: SSH_FILES,
  CertificateFile: SSH_FILES,
  UserKnownHostsFile: SSH_FILES,
  GlobalKnownHostsFile: SSH_FILES,
  ControlPath: SSH_FILES,
  ControlMaster: SSH_FILES,
  uidfile: SSH_FILES,
  gidfile: SSH_FILES,
  modules: SSH_FILES,
  subdir: SSH_FILES,
  directport: SSH_OURS,
  passive: SSH_OURS,
  password_stdin: SSH_OURS,
  StrictHostKeyChecking: SSH_OURS,
});

const S3_FILES = "it makes s3fs read or write files on this host";
const S3_LIBS = "it makes s3fs load a library on this host";
const S3_TLS = "it weakens TLS certificate checks (volgate always verifies the endpoint's certificate)";
const S3_LOGS = "it makes s3fs log request details that can carry credentials";
const S3_CREDS = "volgate passes credentials itself: use -o credentials=PROFILE";
const S3_OURS = "volgate sets it itself: use endpoint=, region= and path_style=";
const S3_ALWAYS = "volgate always mounts nosuid,nodev";

export const S3FS_REFUSED: Refused = byName({
  passwd_file: S3_FILES,
  use_cache: S3_FILES,
  del_cache: S3_FILES,
  check_cache_dir_exist: S3_FILES,
  tmpdir: S3_FILES,
  ahbe_conf: S3_FILES,
  mime: S3_FILES,
  logfile: S3_FILES,
  load_sse_c: S3_FILES,
  use_sse: "it can name a key file on this host: use sse=true for S3-managed keys",
  set_check_cache_sigusr1: S3_FILES,
  ssl_client_cert: S3_FILES,
  credlib: S3_LIBS,
  credlib_opts: S3_LIBS,
  no_check_certificate: S3_TLS,
  ssl_verify_hostname: S3_TLS,
  cipher_suites: S3_TLS,
  curldbg: S3_LOGS,
  dbglevel: S3_LOGS,
  debug: S3_LOGS,
  profile: S3_CREDS,
  iam_role: S3_CREDS,
  ecs: S3_CREDS,
  imdsv1only: S3_CREDS,
  ibm_iam_auth: S3_CREDS,
  ibm_iam_endpoint: S3_CREDS,
  use_session_token: S3_CREDS,
  public_bucket: S3_CREDS,
  url: S3_OURS,
  host: S3_OURS,
  servicepath: S3_OURS,
  use_path_request_style: S3_OURS,
  suid: S3_ALWAYS,
  dev: S3_ALWAYS,
});

/** Throw for the first option that is a flag or in `refused`, naming why and what is allowed. */
export function checkRefused(opts: Options, refused: Refused, allowed: readonly string[]): void {
  for (const key of Object.keys(opts)) {
    const why = key.startsWith("-") ? "command-line flags cannot be passed" : refused.get(key.toLowerCase());
    if (why !== undefined) {
      throw invalid(`option "${key}" is refused: ${why}; allowed: ${[...allowed].sort().join(", ")}`);
    }
  }
}

/**
 * The s3fs tuning options volgate passes on: each allow-listed with a typed, comma-free value
 * (a bounded integer, a flag, or one of a few words), sorted so equal tuning gives equal keys.
 */
import { invalid, shown } from "../../errors.ts";
import type { Options } from "../backend.ts";
import { parseBool, parseIntRange } from "../options.ts";

/** One allow-listed s3fs tuning option: how its value is checked and how s3fs spells it. */
type TuningRule =
  | { readonly kind: "int"; readonly min: number; readonly max: number }
  | { readonly kind: "flag" }
  | { readonly kind: "enum"; readonly values: readonly string[] };

const int = (min: number, max: number): TuningRule => ({ kind: "int", min, max });
const FLAG: TuningRule = { kind: "flag" };

/** Tuning options passed to s3fs under their own names, with typed, comma-free values. */
const TUNING_RULES: Readonly<Record<string, TuningRule>> = {
  multipart_size: int(5, 5120),
  multipart_threshold: int(5, 5120),
  parallel_count: int(1, 100),
  multireq_max: int(1, 100),
  max_stat_cache_size: int(0, 10_000_000),
  stat_cache_expire: int(0, 31_536_000),
  stat_cache_interval_expire: int(0, 31_536_000),
  list_object_max_keys: int(1000, 100_000),
  connect_timeout: int(1, 300),
  readwrite_timeout: int(1, 3600),
  retries: int(1, 20),
  ensure_diskfree: int(0, 10_000_000),
  enable_noobj_cache: FLAG,
  nomultipart: FLAG,
  norenameapi: FLAG,
  nocopyapi: FLAG,
  nomixupload: FLAG,
  listobjectsv2: FLAG,
  complement_stat: FLAG,
  notsup_compat_dir: FLAG,
  enable_content_md5: FLAG,
  requester_pays: FLAG,
  storage_class: {
    kind: "enum",
    values: [
      "standard",
      "standard_ia",
      "onezone_ia",
      "reduced_redundancy",
      "intelligent_tiering",
      "glacier",
      "deep_archive",
    ],
  },
  default_acl: {
    kind: "enum",
    values: [
      "private",
      "public-read",
      "public-read-write",
      "authenticated-read",
      "bucket-owner-read",
      "bucket-owner-full-control",
    ],
  },
};

/** Tuning as s3fs options: `name=value`, or `true` for a bare flag. Keys sorted, so keys compare equal. */
export type S3fsTuning = Readonly<Record<string, string | number | true>>;

export const S3FS_TUNING_OPTIONS: readonly string[] = Object.keys(TUNING_RULES);

export function parseTuning(opts: Options): S3fsTuning {
  const out: Record<string, string | number | true> = {};
  for (const name of Object.keys(TUNING_RULES).sort()) {
    const rule = TUNING_RULES[name];
    const value = opts[name];
    if (rule === undefined || value === undefined) continue;
    if (rule.kind === "int") out[name] = parseIntRange(name, value, rule.min, rule.max);
    else if (rule.kind === "flag") {
      if (parseBool(name, value, false)) out[name] = true;
    } else {
      const v = value.toLowerCase();
      if (!rule.values.includes(v)) {
        throw invalid(`option ${name}="${shown(value)}" must be one of ${rule.values.join(", ")}`);
      }
      out[name] = v;
    }
  }
  if (
    out.nomultipart === true &&
    (out.multipart_size !== undefined || out.multipart_threshold !== undefined)
  ) {
    throw invalid("nomultipart cannot be combined with multipart_size or multipart_threshold");
  }
  return out;
}

// brew-env.mjs: Homebrew's reading of $HOMEBREW_USER_CONFIG_HOME/services/<formula>.env, for the
// brew shim. A model of Ruby, written from Homebrew's source (Library/Homebrew/service.rb,
// Service#effective_environment_variables, at aad366f) and Ruby's String semantics, NOT from the
// product's parser (platforms/darwin/parsers/brew-env.ts), so the e2e tests check the product
// against brew rather than against itself:
//
//   env_file.each_line                     lines end at "\n", which stays on the line
//     .map(&:strip)                        Ruby strip: NUL and \t \n \v \f \r space, both ends;
//                                          a String that is not valid UTF-8 (brew runs Ruby with
//                                          LC_ALL=en_US.UTF-8 on a Mac, utils/os.sh) makes strip
//                                          raise ArgumentError "invalid byte sequence in UTF-8"
//     .reject { empty? || start_with?("#") }
//     .each_with_object({}) do |line, hash|
//       key, value = line.split("=", 2)
//       opoo "Skipping invalid line in #{env_file}: #{line}" if key.blank? || value.nil?
//       hash[key.strip] = value.strip      a later line for a key replaces an earlier one
//     end
//
// String#blank? is Homebrew's extend/blank/string.rb: /\A[[:space:]]*\z/ (Unicode White_Space).

/** Raised where Ruby would raise; the shim prints it as brew's top level does ("Error: …", exit 1). */
export class RubyArgumentError extends Error {}

// ignoreBOM: Ruby keeps a byte-order mark as part of the line (TextDecoder would drop it).
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const RUBY_STRIP = new Set([0x00, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20]);
const ONIGMO_SPACE = /^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/u;

function strip(line) {
  let a = 0;
  let b = line.length;
  while (a < b && RUBY_STRIP.has(line.charCodeAt(a))) a++;
  while (b > a && RUBY_STRIP.has(line.charCodeAt(b - 1))) b--;
  return line.slice(a, b);
}

/** File.foreach: each line with its "\n" (the last one may have none). */
function eachLine(bytes) {
  const lines = [];
  let start = 0;
  while (start < bytes.length) {
    const nl = bytes.indexOf(0x0a, start);
    const end = nl < 0 ? bytes.length : nl + 1;
    lines.push(bytes.subarray(start, end));
    start = end;
  }
  return lines;
}

/**
 * The overrides brew merges from `bytes` (a Map, in insertion order as a Ruby Hash keeps it) and
 * the warnings it prints. Throws RubyArgumentError as brew does for a file that is not UTF-8.
 */
export function brewEnvOverrides(bytes, file) {
  const warnings = [];
  const overrides = new Map();
  const stripped = eachLine(bytes).map((raw) => {
    let text;
    try {
      text = UTF8.decode(raw);
    } catch {
      throw new RubyArgumentError('invalid byte sequence in UTF-8');
    }
    return strip(text);
  });
  for (const line of stripped) {
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (key === '' || ONIGMO_SPACE.test(key) || eq < 0) {
      warnings.push(`Skipping invalid line in ${file}: ${line}`);
      continue;
    }
    const name = strip(key);
    // A Ruby Hash keeps a key's first position when it is assigned again.
    overrides.set(name, strip(line.slice(eq + 1)));
  }
  return { overrides, warnings };
}

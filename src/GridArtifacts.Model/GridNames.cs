using System.Text;
using System.Text.RegularExpressions;

namespace GridArtifacts.Model;

/// <summary>The naming rules of runs, experiments and artifact paths, in one place.</summary>
public static class GridNames
{
    public const int MaxRunNameLength = 63;
    /// <summary>S3 keys are at most 1,024 UTF-8 bytes; the run and experiment prefix takes the rest.</summary>
    public const int MaxArtifactPathBytes = 900;

    private static readonly Regex ExperimentSuffix = new("^(?<run>.+)-(?<exp>exp[0-9]+)$", RegexOptions.CultureInvariant);

    public static bool IsValidRunName(string? name) => name is not null && IsValidRunName(name.AsSpan());

    /// <summary>
    /// 1 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit,
    /// and not ending in <c>-expN</c> (which names an experiment). Checked by hand: a listing checks
    /// one name per key.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static bool IsValidRunName(ReadOnlySpan<char> name)
    {
        if (name.Length is 0 or > MaxRunNameLength || name[0] == '-' || name[^1] == '-') return false;
        foreach (var c in name)
            if (c is not (>= 'a' and <= 'z' or >= '0' and <= '9' or '-')) return false;
        // "<run>-exp<digits>" is an experiment's name: the suffix holds no hyphen, so it follows the last one.
        var dash = name.LastIndexOf('-');
        return !(dash >= 1 && name[(dash + 1)..] is var tail && tail.Length > 3 && tail.StartsWith("exp") && IsDigits(tail[3..]));
    }

    public static bool IsValidExperimentName(string? name) => name is not null && IsValidExperimentName(name.AsSpan());

    /// <summary><c>exp0</c> to <c>exp999999</c>, without leading zeros.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static bool IsValidExperimentName(ReadOnlySpan<char> name)
    {
        if (!name.StartsWith("exp")) return false;
        var digits = name[3..];
        return digits.Length is >= 1 and <= 6 && IsDigits(digits) && (digits[0] != '0' || digits.Length == 1);
    }

    private static bool IsDigits(ReadOnlySpan<char> s)
    {
        foreach (var c in s)
            if (c is not (>= '0' and <= '9')) return false;
        return s.Length > 0;
    }

    /// <summary>Throws <see cref="GridException"/> (InvalidName) unless <paramref name="name"/> is a valid run name.</summary>
    public static string CheckRunName(string name)
    {
        if (!IsValidRunName(name))
        {
            throw new GridException(GridErrorKind.InvalidName, "InvalidRunName",
                $"'{name}' is not a valid run name. Use 1 to {MaxRunNameLength} lower-case letters, digits and hyphens, " +
                "starting and ending with a letter or digit, and not ending in '-expN' (that names an experiment).", name);
        }
        return name;
    }

    public static string CheckExperimentName(string name)
    {
        if (!IsValidExperimentName(name))
        {
            throw new GridException(GridErrorKind.InvalidName, "InvalidExperimentName",
                $"'{name}' is not a valid experiment name. Experiments are named exp0, exp1, ... expN.", name);
        }
        return name;
    }

    public static string ExperimentId(string run, string experiment) => $"{run}-{experiment}";

    public static int ExperimentIndex(string experiment) => ExperimentIndex(experiment.AsSpan());

    public static int ExperimentIndex(ReadOnlySpan<char> experiment) =>
        experiment.Length > 3 && int.TryParse(experiment[3..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var i) ? i : -1;

    public static string ExperimentName(int index) =>
        (uint)index < (uint)CommonExperimentNames.Length ? CommonExperimentNames[index] : "exp" + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    // A listing names every experiment of every run: the first few names are made once.
    private static readonly string[] CommonExperimentNames =
        Enumerable.Range(0, 256).Select(i => "exp" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    public const int MaxTagLength = 64;
    /// <summary>At most this many tags on one run, and on one experiment, so tags never take over a listing.</summary>
    public const int MaxTags = 64;

    /// <summary>
    /// 1 to 64 characters from <c>a-z 0-9 - _ .</c>; the first a letter or digit, the last not a dot.
    /// Narrow on purpose: a tag is a file name on any folder store (case-folding, Windows' trailing dot),
    /// a key on any S3-compatible server, and never holds a wildcard, so a <c>-Tag</c> value always reads as a pattern.
    /// </summary>
    public static bool IsValidTag(ReadOnlySpan<char> tag)
    {
        if (tag.Length is 0 or > MaxTagLength || tag[^1] == '.' || tag[0] is not (>= 'a' and <= 'z' or >= '0' and <= '9')) return false;
        foreach (var c in tag)
            if (c is not (>= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_' or '.')) return false;
        return true;
    }

    public static bool IsValidTag(string? tag) => tag is not null && IsValidTag(tag.AsSpan());

    /// <summary>
    /// The tag as stored: lower-cased (PowerShell compares without case, so <c>Keep</c> is <c>keep</c>), trimmed.
    /// Throws <see cref="GridException"/> (InvalidName, <c>InvalidTag</c>) for anything else.
    /// </summary>
    public static string CheckTag(string? tag)
    {
        var normal = (tag ?? "").Trim().ToLowerInvariant();
        if (!IsValidTag(normal))
        {
            throw new GridException(GridErrorKind.InvalidName, "InvalidTag",
                $"'{tag}' is not a valid tag. Use 1 to {MaxTagLength} letters, digits, '-', '_' and '.', starting with a letter or digit " +
                "and not ending in '.' (stored lower-case).", tag);
        }
        return normal;
    }

    /// <summary>Checks and normalizes every tag, drops repeats, and keeps them in order of first mention.</summary>
    public static IReadOnlyList<string> CheckTags(IEnumerable<string>? tags)
    {
        var list = new List<string>();
        foreach (var t in tags ?? Array.Empty<string>())
        {
            var n = CheckTag(t);
            if (!list.Contains(n)) list.Add(n);
        }
        if (list.Count > MaxTags)
        {
            throw new GridException(GridErrorKind.InvalidArgument, "TooManyTags",
                $"{list.Count} tags were given; a run or an experiment has at most {MaxTags}.", list.Count);
        }
        return list;
    }

    /// <summary>
    /// Splits what a user typed where a run is accepted: <c>run</c> or <c>run-expN</c>
    /// (either part may hold wildcards). Returns the run part and the experiment part, if any.
    /// </summary>
    public static (string Run, string? Experiment) SplitTarget(string target)
    {
        var m = ExperimentSuffix.Match(target);
        return m.Success ? (m.Groups["run"].Value, m.Groups["exp"].Value) : (target, null);
    }

    /// <summary>
    /// Why an artifact path cannot be stored or saved, or null when it can. A valid path is relative,
    /// uses forward slashes, has no empty, '.' or '..' segment, no backslash, no drive letter and no
    /// control character, and any other UTF-8 text is fine.
    /// </summary>
    public static string? ArtifactPathProblem(string? path)
    {
        if (string.IsNullOrEmpty(path)) return "the path is empty";
        if (path.StartsWith('/')) return "the path is absolute";
        if (path.Contains('\\')) return "the path holds a backslash, which Windows reads as a folder separator";
        if (path.Length >= 2 && path[1] == ':' && char.IsAsciiLetter(path[0])) return "the path starts with a drive letter";
        for (var i = 0; i < path.Length; i++)
        {
            var c = path[i];
            if (char.IsControl(c)) return "the path holds a control character";
            if (!char.IsSurrogate(c)) continue;
            // A character outside the Basic Multilingual Plane is a high surrogate and the low one right after it.
            if (char.IsHighSurrogate(c) && i + 1 < path.Length && char.IsLowSurrogate(path[i + 1])) { i++; continue; }
            return $"the path holds a lone surrogate (U+{(int)c:X4} at character {i + 1}), which is not a character and cannot be written as UTF-8";
        }
        foreach (var segment in path.Split('/'))
        {
            if (segment.Length == 0) return "the path has an empty segment";
            if (segment is "." or "..") return "the path has a '.' or '..' segment";
        }
        if (Encoding.UTF8.GetByteCount(path) > MaxArtifactPathBytes) return $"the path is longer than {MaxArtifactPathBytes} UTF-8 bytes";
        return null;
    }

    /// <summary>
    /// The local path where an artifact lands under <paramref name="root"/>:
    /// <c>&lt;root&gt;/&lt;run&gt;/&lt;exp&gt;/&lt;path&gt;</c>. Throws (UnsafePath) for any name that would land
    /// outside <paramref name="root"/>, whatever the platform.
    /// </summary>
    public static string LocalPathFor(string root, string run, string experiment, string artifactPath)
    {
        if (!IsValidRunName(run) || !IsValidExperimentName(experiment))
        {
            throw new GridException(GridErrorKind.UnsafePath, "UnsafeArtifactName",
                $"Refusing to save '{run}/{experiment}': not a valid run and experiment name.", $"{run}/{experiment}/{artifactPath}");
        }
        var problem = ArtifactPathProblem(artifactPath);
        if (problem is not null)
        {
            throw new GridException(GridErrorKind.UnsafePath, "UnsafeArtifactPath",
                $"Refusing to save artifact '{artifactPath}' of {ExperimentId(run, experiment)}: {problem}. Nothing was written.",
                $"{run}/{experiment}/{artifactPath}");
        }
        var fullRoot = Path.GetFullPath(root);
        var rootWithSep = Path.EndsInDirectorySeparator(fullRoot) ? fullRoot : fullRoot + Path.DirectorySeparatorChar;
        var combined = Path.GetFullPath(Path.Combine(fullRoot, run, experiment, artifactPath.Replace('/', Path.DirectorySeparatorChar)));
        var comparison = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        if (!combined.StartsWith(rootWithSep, comparison))
        {
            throw new GridException(GridErrorKind.UnsafePath, "UnsafeArtifactPath",
                $"Refusing to save artifact '{artifactPath}' of {ExperimentId(run, experiment)}: it would land outside '{fullRoot}'. Nothing was written.",
                $"{run}/{experiment}/{artifactPath}");
        }
        return combined;
    }

    private static readonly string[] Adjectives =
    {
        "adorable", "brave", "calm", "clever", "daring", "eager", "fancy", "gentle", "happy", "jolly",
        "keen", "lively", "merry", "nimble", "proud", "quick", "shiny", "swift", "tidy", "witty",
    };

    private static readonly string[] Animals =
    {
        "mouse", "otter", "falcon", "badger", "heron", "lynx", "panda", "koala", "tiger", "wombat",
        "beaver", "gecko", "ibis", "marten", "newt", "orca", "puffin", "raven", "seal", "yak",
    };

    /// <summary>A fresh name such as <c>adorable-mouse-123</c>.</summary>
    public static string NewRunName(Random? random = null)
    {
        var r = random ?? Random.Shared;
        return $"{Adjectives[r.Next(Adjectives.Length)]}-{Animals[r.Next(Animals.Length)]}-{r.Next(100, 1000)}";
    }
}

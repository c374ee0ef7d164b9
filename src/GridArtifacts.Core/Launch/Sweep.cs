using System.Globalization;

namespace GridArtifacts.Core.Launch;

/// <summary>
/// A run's parameters and what they expand to: each combination of the values once (a sweep), and
/// the argument list of each experiment, parameters passed as the product passed them.
/// </summary>
public static class Sweep
{
    /// <summary>
    /// Each combination of the parameters' values, once, keys in name order. A key with one value
    /// is in every combination; <c>lr = 0.1, 0.01; batch = 32, 64</c> gives four.
    /// </summary>
    public static List<Dictionary<string, string>> Expand(IReadOnlyDictionary<string, IReadOnlyList<string>>? parameters)
    {
        var result = new List<Dictionary<string, string>> { new(StringComparer.Ordinal) };
        if (parameters is null) return result;
        foreach (var key in parameters.Keys.OrderBy(k => k, StringComparer.Ordinal))
        {
            var values = parameters[key];
            result = result.SelectMany(r => values.Select(v => new Dictionary<string, string>(r, StringComparer.Ordinal) { [key] = v })).ToList();
        }
        return result;
    }

    /// <summary>The parameters as the run's record shows them: a list as its values joined by ", ".</summary>
    public static Dictionary<string, string> ToText(IReadOnlyDictionary<string, IReadOnlyList<string>>? parameters)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        if (parameters is null) return d;
        foreach (var (key, values) in parameters) d[key] = string.Join(", ", values);
        return d;
    }

    /// <summary>
    /// A shell command line for one experiment: each <c>{name}</c> replaced by its value; when none
    /// was, <c>--name value</c> appended for each parameter. Run by the system shell.
    /// </summary>
    public static string[] ForCommand(string command, IReadOnlyDictionary<string, string> p, bool windows)
    {
        var line = command;
        var templated = false;
        foreach (var (k, v) in p)
        {
            if (line.Contains("{" + k + "}", StringComparison.Ordinal)) { line = line.Replace("{" + k + "}", v, StringComparison.Ordinal); templated = true; }
        }
        if (!templated) line += string.Concat(p.Select(kv => $" --{kv.Key} {kv.Value}"));
        return windows ? new[] { "cmd.exe", "/c", line } : new[] { "/bin/sh", "-c", line };
    }

    /// <summary>
    /// The argument list of a script for one experiment: a .ps1 in <paramref name="pwsh"/> with
    /// <c>-name value</c>, a .py in python3 with <c>--name value</c>, anything else run directly with
    /// <c>--name value</c>.
    /// </summary>
    public static string[] ForScript(string script, IReadOnlyDictionary<string, string> p, IReadOnlyList<string> pwsh)
    {
        var ext = Path.GetExtension(script).ToLowerInvariant();
        if (ext == ".ps1")
        {
            return pwsh.Concat(new[] { "-NoProfile", "-NonInteractive", "-File", script }).Concat(p.SelectMany(kv => new[] { "-" + kv.Key, kv.Value })).ToArray();
        }
        var head = ext == ".py" ? new[] { "python3", script } : new[] { script };
        return head.Concat(p.SelectMany(kv => new[] { "--" + kv.Key, kv.Value })).ToArray();
    }

    /// <summary>A value as text, the invariant culture's way (0.1 is "0.1" everywhere).</summary>
    public static string Text(object? o) => Convert.ToString(o, CultureInfo.InvariantCulture) ?? "";
}

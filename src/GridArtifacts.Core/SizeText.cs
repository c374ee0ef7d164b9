using System.Globalization;

namespace GridArtifacts.Core;

/// <summary>Byte counts for people: 1.5 MiB rather than 1572864.</summary>
public static class SizeText
{
    private static readonly string[] Units = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };

    public static string Format(long bytes)
    {
        double v = bytes;
        var i = 0;
        while (v >= 1024 && i < Units.Length - 1) { v /= 1024; i++; }
        return i == 0 ? $"{bytes} B" : string.Format(CultureInfo.InvariantCulture, "{0:0.#} {1}", v, Units[i]);
    }
}

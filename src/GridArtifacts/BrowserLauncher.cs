using System.Diagnostics;

namespace GridArtifacts;

/// <summary>
/// Opens an address in the user's browser: $BROWSER when set, else the platform's opener. The address
/// is on the opener's command line, which every local user can read: it must carry no secret.
/// </summary>
internal static class BrowserLauncher
{
    public static bool TryOpen(Uri url, out string? why)
    {
        why = null;
        try
        {
            ProcessStartInfo start;
            var browser = Environment.GetEnvironmentVariable("BROWSER");
            if (!string.IsNullOrWhiteSpace(browser)) start = new ProcessStartInfo(browser.Split(':')[0]);
            else if (OperatingSystem.IsWindows()) start = new ProcessStartInfo(url.ToString()) { UseShellExecute = true };
            else if (OperatingSystem.IsMacOS()) start = new ProcessStartInfo("open");
            else start = new ProcessStartInfo("xdg-open");
            if (!start.UseShellExecute) start.ArgumentList.Add(url.ToString());
            start.RedirectStandardOutput = start.RedirectStandardError = !start.UseShellExecute;
            using var process = Process.Start(start);
            if (process is null) { why = "no process was started"; return false; }
            return true;
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            why = ex.Message;
            return false;
        }
    }
}

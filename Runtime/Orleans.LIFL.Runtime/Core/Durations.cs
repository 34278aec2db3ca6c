using System.Globalization;

namespace Orleans.LIFL.Runtime.Core;

/// <summary>Durations as people read them in logs: "3 s", "15 min", "1 h 30 min", "250 ms".</summary>
internal static class Durations
{
    public static string Format(TimeSpan span)
    {
        if (span < TimeSpan.FromSeconds(1))
        {
            return string.Create(CultureInfo.InvariantCulture, $"{span.TotalMilliseconds:0.#} ms");
        }

        if (span < TimeSpan.FromMinutes(1))
        {
            return string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0.#} s");
        }

        if (span < TimeSpan.FromHours(1))
        {
            return span.Seconds == 0
                ? string.Create(CultureInfo.InvariantCulture, $"{span.Minutes} min")
                : string.Create(CultureInfo.InvariantCulture, $"{span.Minutes} min {span.Seconds} s");
        }

        var hours = (int)span.TotalHours;
        return span.Minutes == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{hours} h")
            : string.Create(CultureInfo.InvariantCulture, $"{hours} h {span.Minutes} min");
    }
}

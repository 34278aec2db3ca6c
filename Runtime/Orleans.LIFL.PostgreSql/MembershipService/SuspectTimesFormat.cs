using System.Globalization;
using System.Text;
using Orleans.LIFL.Runtime.MembershipService;

namespace Orleans.LIFL.PostgreSql;

/// <summary>
/// The SuspectTimes column: votes separated by '|', each "voter,time" where the voter is
/// <see cref="SiloAddress.ToString"/> ("ip:port@generation") and the time is UTC in the round-trip format
/// ("2024-05-01T10:20:30.1234567Z"), so a vote reads back exactly as it was written. No vote: NULL.
/// </summary>
internal static class SuspectTimesFormat
{
    private const char VoteSeparator = '|';
    private const char FieldSeparator = ',';
    private const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'";

    public static string? Format(IReadOnlyList<SuspectVote> votes)
    {
        if (votes.Count == 0)
        {
            return null;
        }

        var text = new StringBuilder();
        foreach (var vote in votes)
        {
            if (text.Length > 0)
            {
                text.Append(VoteSeparator);
            }

            text.Append(vote.Voter.ToString())
                .Append(FieldSeparator)
                .Append(MembershipTimes.ToUtc(vote.TimeUtc).ToString(TimeFormat, CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }

    public static IReadOnlyList<SuspectVote> Parse(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return [];
        }

        var votes = new List<SuspectVote>();
        foreach (var vote in value.Split(VoteSeparator))
        {
            // An IPv6 voter has no ',' either, so the last ',' always separates voter and time.
            var comma = vote.LastIndexOf(FieldSeparator);
            if (comma <= 0
                || !DateTime.TryParseExact(vote[(comma + 1)..], TimeFormat, CultureInfo.InvariantCulture,
                    DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var time))
            {
                throw new FormatException($"'{vote}' in SuspectTimes is not a suspicion vote: expected 'ip:port@generation,{TimeFormat}'.");
            }

            votes.Add(new SuspectVote(SiloAddress.Parse(vote[..comma]), DateTime.SpecifyKind(time, DateTimeKind.Utc)));
        }

        return votes;
    }
}

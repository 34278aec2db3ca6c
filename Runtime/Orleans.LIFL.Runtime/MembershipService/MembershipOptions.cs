using Microsoft.Extensions.Options;

namespace Orleans.LIFL.Configuration;

/// <summary>
/// Failure detection and membership timing. The defaults declare a killed silo dead in about 1-2 s on loopback
/// (its connections are refused at once, so probes fail immediately), and a hung one in about 10 s, while
/// tolerating a silo busy for seconds with hundreds of MB of model updates (an unanswered probe waits
/// <see cref="ProbeTimeout"/>; a prober whose own threads are that late does not count its misses).
/// </summary>
public sealed class MembershipOptions
{
    /// <summary>How often every silo probes every other active silo.</summary>
    public TimeSpan ProbePeriod { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a probe waits for its answer.</summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Consecutive unanswered probes after which the prober votes the silo dead.</summary>
    public int MissedProbesLimit { get; set; } = 3;

    /// <summary>Votes (from different silos) that declare a silo dead; fewer when fewer silos could vote.</summary>
    public int NumVotesForDeathDeclaration { get; set; } = 2;

    /// <summary>Votes older than this no longer count.</summary>
    public TimeSpan DeathVoteExpirationTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a silo re-reads the membership table (besides when a peer says it changed).</summary>
    public TimeSpan TableRefreshPeriod { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often a silo writes its IAmAlive time.</summary>
    public TimeSpan IAmAlivePeriod { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>A joining silo that cannot reach an active silo whose IAmAlive is older than this treats it as gone.</summary>
    public TimeSpan StaleAfter { get; set; } = TimeSpan.FromSeconds(10);
}

internal sealed class MembershipOptionsValidator : IValidateOptions<MembershipOptions>
{
    public ValidateOptionsResult Validate(string? name, MembershipOptions options)
    {
        var errors = new List<string>();
        void Positive(TimeSpan value, string setting)
        {
            if (value <= TimeSpan.Zero)
            {
                errors.Add($"MembershipOptions.{setting} must be positive (got {value}).");
            }
        }

        Positive(options.ProbePeriod, nameof(options.ProbePeriod));
        Positive(options.ProbeTimeout, nameof(options.ProbeTimeout));
        Positive(options.DeathVoteExpirationTimeout, nameof(options.DeathVoteExpirationTimeout));
        Positive(options.TableRefreshPeriod, nameof(options.TableRefreshPeriod));
        Positive(options.IAmAlivePeriod, nameof(options.IAmAlivePeriod));
        Positive(options.StaleAfter, nameof(options.StaleAfter));
        if (options.MissedProbesLimit < 1)
        {
            errors.Add($"MembershipOptions.MissedProbesLimit must be at least 1 (got {options.MissedProbesLimit}).");
        }

        if (options.NumVotesForDeathDeclaration < 1)
        {
            errors.Add($"MembershipOptions.NumVotesForDeathDeclaration must be at least 1 (got {options.NumVotesForDeathDeclaration}).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

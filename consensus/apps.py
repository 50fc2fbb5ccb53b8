from django.apps import AppConfig


class ConsensusConfig(AppConfig):
    name = "consensus"
    verbose_name = "Consensus"

    def ready(self) -> None:
        from annotation.signals import assignment_submitted

        from .receivers import recompute_after_submission

        assignment_submitted.connect(recompute_after_submission, dispatch_uid="consensus.recompute_after_submission")

        # annotation offers export sources by name so that it never imports this app.
        from annotation.exports import score_source_register

        from .exports import consensus_scores

        score_source_register(name="consensus", source=consensus_scores)

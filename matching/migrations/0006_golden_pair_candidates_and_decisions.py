"""Candidates become pairs of golden records; decisions bind the records of both sides
(schema, nullable first; 0007 fills the new columns from the old rows, 0008 constrains them)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('matching', '0005_matchkey_covering_lookup'),
        ('mdm', '0004_lz4_json_columns'),
    ]

    operations = [
        migrations.CreateModel(
            name='MatchDecisionRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('side', models.CharField(choices=[('left', 'Left'), ('right', 'Right')], max_length=5)),
            ],
        ),
        migrations.RemoveConstraint(
            model_name='matchcandidate',
            name='uniq_candidate_pair',
        ),
        migrations.RemoveConstraint(
            model_name='matchcandidate',
            name='candidate_left_lt_right',
        ),
        migrations.AddField(
            model_name='historicalmatchdecision',
            name='left_golden',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, help_text="The left record's golden record when the decision was made.", null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='mdm.goldenrecord'),
        ),
        migrations.AddField(
            model_name='historicalmatchdecision',
            name='origin',
            field=models.CharField(choices=[('candidate', 'decided on a match candidate'), ('split', 'a steward split a golden record')], default='candidate', max_length=12),
        ),
        migrations.AddField(
            model_name='historicalmatchdecision',
            name='right_golden',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, help_text="The right record's golden record when the decision was made.", null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='mdm.goldenrecord'),
        ),
        migrations.AddField(
            model_name='matchcandidate',
            name='left_golden',
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='mdm.goldenrecord'),
        ),
        migrations.AddField(
            model_name='matchcandidate',
            name='pairs',
            field=models.JSONField(blank=True, default=list, help_text="Every scored member pair (records, probability, match weight, reason; explanation but for the first), best first: the first is the evidence above."),
        ),
        migrations.AddField(
            model_name='matchcandidate',
            name='reason',
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddField(
            model_name='matchcandidate',
            name='right_golden',
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='mdm.goldenrecord'),
        ),
        migrations.AddField(
            model_name='matchdecision',
            name='left_golden',
            field=models.ForeignKey(blank=True, db_index=False, help_text="The left record's golden record when the decision was made.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='mdm.goldenrecord'),
        ),
        migrations.AddField(
            model_name='matchdecision',
            name='origin',
            field=models.CharField(choices=[('candidate', 'decided on a match candidate'), ('split', 'a steward split a golden record')], default='candidate', max_length=12),
        ),
        migrations.AddField(
            model_name='matchdecision',
            name='right_golden',
            field=models.ForeignKey(blank=True, db_index=False, help_text="The right record's golden record when the decision was made.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='mdm.goldenrecord'),
        ),
        migrations.AlterField(
            model_name='historicalmatchdecision',
            name='evidence',
            field=models.CharField(help_text="Fingerprint of the match attributes of both sides' records.", max_length=64),
        ),
        migrations.AlterField(
            model_name='matchdecision',
            name='evidence',
            field=models.CharField(help_text="Fingerprint of the match attributes of both sides' records.", max_length=64),
        ),
        migrations.AddField(
            model_name='matchdecisionrecord',
            name='decision',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='records', to='matching.matchdecision'),
        ),
        migrations.AddField(
            model_name='matchdecisionrecord',
            name='record',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='mdm.sourcerecord'),
        ),
    ]

from django.contrib import admin

from .models import (
    Assignment,
    Grade,
    GradeChange,
    Joint,
    JointArea,
    Landmark,
    Membership,
    Patient,
    Project,
    Radiograph,
    Scheme,
    Visit,
)


class JointAreaInline(admin.TabularInline):
    model = JointArea
    extra = 0
    fields = ["body_part", "code", "dimension", "group", "joint", "max_grade", "label", "order"]


@admin.register(Scheme)
class SchemeAdmin(admin.ModelAdmin):
    list_display = ["key", "name"]
    search_fields = ["key", "name"]
    inlines = [JointAreaInline]


@admin.register(Joint)
class JointAdmin(admin.ModelAdmin):
    list_display = ["name", "label", "scheme", "body_part", "order"]
    list_filter = ["scheme", "body_part"]
    search_fields = ["name", "label"]


@admin.register(JointArea)
class JointAreaAdmin(admin.ModelAdmin):
    list_display = ["code", "label", "scheme", "body_part", "dimension", "group", "max_grade"]
    list_filter = ["scheme", "body_part", "dimension", "group"]
    search_fields = ["code", "label"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "scheme", "readers_per_radiograph", "blinded", "suggestions", "reading_mode", "created_at"]
    list_filter = ["scheme", "blinded", "suggestions", "reading_mode"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__slug"]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["pseudonym", "project"]
    list_filter = ["project"]
    search_fields = ["pseudonym"]


@admin.register(Visit)
class VisitAdmin(admin.ModelAdmin):
    list_display = ["patient", "timepoint", "acquired_on"]
    list_filter = ["patient__project", "timepoint"]
    search_fields = ["patient__pseudonym"]


@admin.register(Radiograph)
class RadiographAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "visit", "body_part", "laterality", "status", "submitted_reads", "width", "height", "created_at"]
    list_filter = ["project", "body_part", "laterality", "status"]
    search_fields = ["visit__patient__pseudonym", "checksum"]
    readonly_fields = ["checksum", "width", "height", "created_at"]


@admin.register(Landmark)
class LandmarkAdmin(admin.ModelAdmin):
    list_display = ["radiograph", "joint", "x", "y", "source", "confidence", "created_by"]
    list_filter = ["source", "radiograph__project"]
    search_fields = ["joint__name", "radiograph__visit__patient__pseudonym"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "reader", "radiograph", "status", "priority", "started_at", "submitted_at", "seconds_spent"]
    list_filter = ["status", "radiograph__project", "reader"]
    search_fields = ["reader__username", "radiograph__visit__patient__pseudonym"]


class GradeChangeInline(admin.TabularInline):
    model = GradeChange
    extra = 0
    can_delete = False
    readonly_fields = ["changed_by", "changed_at", "old_value", "new_value", "source", "version"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Grade)
class GradeAdmin(admin.ModelAdmin):
    list_display = ["assignment", "area", "value", "source", "version", "updated_at"]
    list_filter = ["source", "area__dimension", "area__group", "assignment__radiograph__project"]
    search_fields = ["area__code", "assignment__reader__username"]
    # History is the record of who graded what: it is never edited by hand.
    readonly_fields = ["assignment", "area", "value", "source", "version", "updated_at"]
    inlines = [GradeChangeInline]


@admin.register(GradeChange)
class GradeChangeAdmin(admin.ModelAdmin):
    list_display = ["grade", "changed_by", "changed_at", "old_value", "new_value", "source", "version"]
    list_filter = ["source", "changed_by"]
    search_fields = ["grade__area__code", "changed_by__username"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False
